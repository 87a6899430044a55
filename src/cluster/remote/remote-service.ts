// Any node serves any request: a ContextService decorator that runs an operation locally when this
// node serves the context's group, and otherwise asks a node that hosts it (remote-call-*.ts).
// Reads are answered from local state after a ReadIndex barrier, so a node without a replica has
// nothing to read from; writes that only propose need no help (the consensus layer forwards them
// to the leader) and stay on the local path, as does everything on a node that hosts the group.
//
// The hosting node's answer is re-thrown as the same ServiceError (code, message, Retry-After), so
// the HTTP layer renders the identical response. A replica that does not serve the group after all
// (placement moved it, or it is still catching up) answers "not here" and the next one is tried;
// a read may also be retried elsewhere after any transport failure, a PUT only when it was unsent.

import { setTimeout as sleep } from 'node:timers/promises';

import type { GroupId, NodeId } from '../../../raft/index.js';
import { failureToServiceError } from '../../context/consensus.js';
import type { ContextView, LlmContextView, MessagesPage, StoredMessage } from '../../api/domain.js';
import { ServiceError } from '../../api/errors.js';
import { validateContextId } from '../../api/identifiers.js';
import { groupOf } from '../../context/routing.js';
import type { ContextService, PutContextResult } from '../../api/service.js';
import type { RemoteCaller } from './remote-call-client.js';
import { readOnlyOperations } from './remote-call-protocol.js';
import type { ServiceCallRequest } from './remote-call-protocol.js';

export interface RemoteServiceOptions {
  readonly nodeId: NodeId;
  /** This node's own service: used for groups it serves, and for writes that only propose. */
  readonly local: ContextService;
  readonly caller: RemoteCaller;
  readonly groupCount: number;
  /** Whether this node serves reads of `group` itself (a current local replica). */
  readonly serves: (group: GroupId) => boolean;
  /** The nodes placement puts `group` on. */
  readonly replicasOf: (group: GroupId) => readonly NodeId[];
  /** Whole budget of one remote operation, retries included; longer than the host's own budgets. */
  readonly timeoutMs: number;
  /** Pause after every replica was tried once. Default 25 ms. */
  readonly retryDelayMs?: number;
  readonly now?: () => number;
  /** A call failed in a way worth logging (unreachable peer, wrong secret, bad answer). */
  readonly onProblem?: (peer: NodeId, reason: string) => void;
}

/** Runs one operation on a node hosting `group`, trying its replicas in turn until `timeoutMs`. */
export type RemoteRunner = (
  group: GroupId,
  request: ServiceCallRequest,
  timeoutMs?: number,
) => Promise<unknown>;

export const createRemoteRunner = (
  options: Omit<RemoteServiceOptions, 'local' | 'groupCount' | 'serves'>,
): RemoteRunner => {
  const { caller, nodeId } = options;
  const now = options.now ?? Date.now;
  const retryDelayMs = options.retryDelayMs ?? 25;
  return async (group, request, timeoutMs = options.timeoutMs) => {
    const deadline = now() + timeoutMs;
    const retryAnywhere = readOnlyOperations.has(request.operation);
    for (let turn = 0; ; turn += 1) {
      const remainingMs = deadline - now();
      if (remainingMs <= 0) break;
      const replicas = options.replicasOf(group).filter((node) => node !== nodeId);
      const peer = replicas[turn % Math.max(1, replicas.length)];
      if (peer !== undefined) {
        const result = await caller.call(peer, request, remainingMs);
        if (result.kind === 'answer') {
          const answer = result.answer;
          if (answer.ok) return answer.value;
          if ('error' in answer) {
            const { code, message, retryAfterSeconds } = answer.error;
            throw new ServiceError(
              code,
              message,
              retryAfterSeconds === undefined ? {} : { retryAfterSeconds },
            );
          }
          // The peer logged the cause; here it becomes this node's own 500 with a request id.
          if ('internal' in answer) throw new Error(`${request.operation} failed on ${peer}`);
          // Not here: try the next replica.
        } else {
          if (!result.reason.startsWith('No connection')) options.onProblem?.(peer, result.reason);
          // The PUT may have been applied: answered as a timeout, like an ambiguous forwarded write.
          if (result.kind === 'ambiguous' && !retryAnywhere)
            throw failureToServiceError({ ok: false, code: 'TIMEOUT' });
        }
      }
      if (replicas.length === 0 || (turn + 1) % replicas.length === 0)
        await sleep(Math.min(retryDelayMs, Math.max(0, deadline - now())));
    }
    throw failureToServiceError({ ok: false, code: 'NO_GROUP' });
  };
};

export const createRemoteService = (options: RemoteServiceOptions): ContextService => {
  const { local } = options;
  const remote = createRemoteRunner(options);

  /** The group of `id` when another node must answer; undefined when this node serves it. */
  const remoteGroup = (id: string): GroupId | undefined => {
    // The local service's own check and error, before any network hop.
    validateContextId(id);
    const group = groupOf(id, options.groupCount);
    return options.serves(group) ? undefined : group;
  };

  return {
    async putContext(id, body) {
      const group = remoteGroup(id);
      if (group === undefined) return local.putContext(id, body);
      return (await remote(group, { operation: 'putContext', args: [id, body] })) as PutContextResult;
    },
    async getContext(id) {
      const group = remoteGroup(id);
      if (group === undefined) return local.getContext(id);
      return (await remote(group, { operation: 'getContext', args: [id] })) as ContextView;
    },
    async tail(id, limit, offset) {
      const group = remoteGroup(id);
      if (group === undefined) return local.tail(id, limit, offset);
      return (await remote(group, { operation: 'tail', args: [id, limit, offset] })) as StoredMessage[];
    },
    async messages(id, fromSeq, limit) {
      const group = remoteGroup(id);
      if (group === undefined) return local.messages(id, fromSeq, limit);
      return (await remote(group, { operation: 'messages', args: [id, fromSeq, limit] })) as MessagesPage;
    },
    async llmContext(id, query) {
      const group = remoteGroup(id);
      if (group === undefined) return local.llmContext(id, query);
      return (await remote(group, { operation: 'llmContext', args: [id, query] })) as LlmContextView;
    },
    // Proposals only: the consensus layer forwards them to the group's leader wherever it is.
    deleteContext: (id) => local.deleteContext(id),
    patchMetadata: (id, metadata) => local.patchMetadata(id, metadata),
    append: (id, request) => local.append(id, request),
    compact: (id, request) => local.compact(id, request),
  };
};
