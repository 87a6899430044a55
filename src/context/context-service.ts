// The service behind the HTTP gateway, the one layer above consensus: it checks a request once (a
// body the gateway checked passes at once, ../api/body-checks.ts), stamps the time, counts tokens
// once, routes to the context's Raft group, proposes, counts the proposal's outcome and each first
// append for /metrics, and turns results into response bodies or ServiceErrors. Reads wait for the group's ReadIndex barrier, then
// read the local state machine, so they are linearizable. (In a cluster, reads of groups this node
// does not host are run by a node that does: cluster/remote/remote-service.ts.)

import type { GroupKv } from '../../raft/index.js';
import { proposed, readable } from './consensus.js';
import type { Consensus } from './consensus.js';
import type {
  AppendRequest,
  AppendResult,
  CompactRequest,
  ContextPut,
  ContextView,
  JsonObject,
  LlmContextView,
  MessageInput,
  MessagesPage,
  StoredMessage,
} from '../api/domain.js';
import { ServiceError } from '../api/errors.js';
import { createBodyChecks } from '../api/body-checks.js';
import { validateContextId } from '../api/identifiers.js';
import type { RequestLimits } from '../api/schemas.js';
import { defaultRequestLimits } from '../api/schemas.js';
import type { ArchiveReader } from './archive-reader.js';
import { readMessages, readTail } from './read-through.js';
import { groupOf } from './routing.js';
import type { ContextService, PutContextResult } from '../api/service.js';
import type { Metrics, ProposalOutcome } from '../telemetry/metrics.js';
import type { TokenEstimator } from '../tokens/types.js';
import type { Command, ContextDefaults, MessageDraft } from './commands.js';
import { jsonEqual } from './json-equal.js';
import { defaultPolicy, defaultTriggerRatio } from './policy-config.js';
import { conflictError } from './results.js';
import type { CommandResult } from './results.js';
import type { ContextStateMachine } from './state-machine.js';
import { splitTokenCount } from './token-split.js';
import { queryInteger } from './validation.js';

export interface ContextServiceLimits {
  /** Largest `limit` of a tail or export page. */
  readonly pageLimitMax: number;
}

export const defaultContextServiceLimits: ContextServiceLimits = {
  pageLimitMax: 1_000,
};

/** The state machine's read side, as the service uses it. */
export type ContextReads = Pick<
  ContextStateMachine,
  'getContext' | 'tail' | 'messages' | 'window' | 'tailBounds'
>;

export interface ContextServiceOptions {
  readonly consensus: Consensus;
  readonly stateMachine: ContextReads;
  readonly estimator: TokenEstimator;
  readonly clock: () => Date;
  readonly groupCount: number;
  readonly limits?: ContextServiceLimits;
  /** The gateway's limits, for requests from other callers (defaultRequestLimits when absent). */
  readonly requestLimits?: RequestLimits;
  /** Where history trimmed after archiving is read back from (read-through.ts); none without an archive. */
  readonly archive?: ArchiveReader;
  /** Where proposals and first appends are counted (fastpaca_raft_proposals_total, fastpaca_messages_*). */
  readonly metrics?: ServiceMetrics;
}

/** What the service counts. */
export type ServiceMetrics = Pick<Metrics, 'recordAppend' | 'recordProposal'>;

const defaults: ContextDefaults = { triggerRatio: defaultTriggerRatio, policy: defaultPolicy };

type ResultOf<T extends string> = Extract<CommandResult, { readonly type: T }>;

/** The success of the expected type, or the command's error as a ServiceError. */
const expectResult = <T extends Exclude<CommandResult, { readonly error: unknown }>['type']>(
  result: CommandResult,
  type: T,
): ResultOf<T> => {
  if ('error' in result) throw new ServiceError(result.error, result.message);
  if (result.type !== type) throw new Error(`expected a ${type} result, got ${result.type}`);
  return result as ResultOf<T>;
};

export const createContextService = (options: ContextServiceOptions): ContextService => {
  const { consensus, stateMachine, estimator, clock, groupCount, metrics, archive } = options;
  const limits = options.limits ?? defaultContextServiceLimits;
  // Bodies the gateway checked pass at once; anything else is checked by the same rules.
  const bodies = createBodyChecks(options.requestLimits ?? defaultRequestLimits);
  const now = (): string => clock().toISOString();

  const route = (id: string): number => {
    validateContextId(id);
    return groupOf(id, groupCount);
  };

  const propose = async (id: string, command: Command): Promise<CommandResult> =>
    proposeTo(route(id), command);

  /** For callers that already routed (and so validated) the id. */
  const proposeTo = async (group: number, command: Command): Promise<CommandResult> => {
    const outcome = await consensus.propose(group, command);
    metrics?.recordProposal(outcome.ok ? 'ok' : (outcome.code.toLowerCase() as ProposalOutcome));
    return proposed(outcome);
  };

  /** Waits for the read barrier of `id`'s group; returns what the reads need. */
  const readPoint = async (id: string): Promise<{ readonly group: number; readonly kv: GroupKv }> => {
    const group = route(id);
    readable(await consensus.read(group));
    return { group, kv: consensus.groupKv(group) };
  };

  const draftOf = async (message: MessageInput): Promise<MessageDraft> => {
    const partTokens =
      message.token_count === undefined
        ? checkedCounts(await estimator.countParts(message.parts), message.parts.length)
        : splitTokenCount(message.parts, message.token_count);
    return {
      role: message.role,
      parts: message.parts,
      ...(message.metadata === undefined ? {} : { metadata: message.metadata }),
      ...(message.id === undefined ? {} : { clientId: message.id }),
      tokenCount: message.token_count ?? partTokens.reduce((sum, tokens) => sum + tokens, 0),
      partTokens,
    };
  };

  const ifVersionOf = (ifVersion: number | undefined): { ifVersion?: number } =>
    ifVersion === undefined
      ? {}
      : { ifVersion: queryInteger('if_version', ifVersion, 0, Number.MAX_SAFE_INTEGER) };

  return {
    async putContext(id: string, body: ContextPut): Promise<PutContextResult> {
      const changes = bodies.ensureContextPut(body);
      const { group, kv } = await readPoint(id);
      const current = await stateMachine.getContext(group, kv, id);
      if (current === undefined && changes.token_budget === undefined) {
        throw new ServiceError('invalid_context_config', 'token_budget is required to create a context');
      }
      if (current?.status === 'tombstoned') {
        throw new ServiceError('context_tombstoned', `Context ${JSON.stringify(id)} is tombstoned`);
      }
      // Clients upsert on every turn: an unchanged PUT is answered from the read, never proposed.
      if (current !== undefined && changesNothing(current, changes))
        return { created: false, context: current };
      const result = await propose(id, { type: 'put_context', contextId: id, now: now(), changes, defaults });
      const { created, context } = expectResult(result, 'put_context');
      return { created, context };
    },

    async getContext(id: string): Promise<ContextView> {
      const { group, kv } = await readPoint(id);
      const context = await stateMachine.getContext(group, kv, id);
      if (context === undefined) throw notFound(id);
      return context;
    },

    async deleteContext(id: string): Promise<void> {
      expectResult(
        await propose(id, { type: 'delete_context', contextId: id, now: now() }),
        'delete_context',
      );
    },

    async patchMetadata(id: string, metadata: JsonObject): Promise<ContextView> {
      const patch = bodies.ensureMetadataPatch(metadata);
      const result = await propose(id, {
        type: 'patch_metadata',
        contextId: id,
        now: now(),
        metadata: patch,
      });
      return expectResult(result, 'patch_metadata').context;
    },

    async append(id: string, unchecked: AppendRequest): Promise<AppendResult> {
      const group = route(id);
      const request = bodies.ensureAppend(unchecked);
      const key = request.idempotency_key;
      const command: Command = {
        type: 'append',
        contextId: id,
        now: now(),
        message: await draftOf(request.message),
        ...ifVersionOf(request.if_version),
        ...(key === undefined ? {} : { idempotencyKey: key }),
      };
      const { seq, version, token_estimate, replayed } = expectResult(
        await proposeTo(group, command),
        'append',
      );
      // Only first appends count: an idempotent replay appended nothing.
      if (!replayed) {
        const source = request.message.token_count === undefined ? 'server' : 'client';
        metrics?.recordAppend(request.message.role, source, token_estimate);
      }
      return { seq, version, token_estimate, replayed };
    },

    async tail(id: string, limit: number, offset: number): Promise<readonly StoredMessage[]> {
      queryInteger('limit', limit, 1, limits.pageLimitMax);
      queryInteger('offset', offset, 0, Number.MAX_SAFE_INTEGER);
      const { group, kv } = await readPoint(id);
      return readTail(stateMachine, archive, group, kv, id, limit, offset);
    },

    async messages(id: string, fromSeq: number, limit: number): Promise<MessagesPage> {
      queryInteger('from_seq', fromSeq, 0, Number.MAX_SAFE_INTEGER);
      queryInteger('limit', limit, 1, limits.pageLimitMax);
      const { group, kv } = await readPoint(id);
      const page = await readMessages(stateMachine, archive, group, kv, id, fromSeq, limit);
      if (page === undefined) throw notFound(id);
      return page;
    },

    async llmContext(
      id: string,
      query: { budgetTokens?: number; ifVersion?: number },
    ): Promise<LlmContextView> {
      const budget = query.budgetTokens;
      if (budget !== undefined) queryInteger('budget_tokens', budget, 1, Number.MAX_SAFE_INTEGER);
      const { ifVersion } = ifVersionOf(query.ifVersion);
      const { group, kv } = await readPoint(id);
      const view = await stateMachine.window(group, kv, id, budget);
      if (view === undefined) throw notFound(id);
      if (ifVersion !== undefined && ifVersion !== view.version) {
        const { message } = conflictError(ifVersion, view.version);
        throw new ServiceError('conflict', message);
      }
      return view;
    },

    async compact(id: string, unchecked: CompactRequest): Promise<{ readonly version: number }> {
      const group = route(id);
      const request = bodies.ensureCompact(unchecked);
      const replacement: readonly MessageInput[] = request.replacement;
      const command: Command = {
        type: 'compact',
        contextId: id,
        now: now(),
        replacement: await Promise.all(replacement.map(draftOf)),
        ...ifVersionOf(request.if_version),
      };
      return { version: expectResult(await proposeTo(group, command), 'compact').version };
    },
  };
};

const notFound = (id: string): ServiceError =>
  new ServiceError('context_not_found', `Context ${JSON.stringify(id)} does not exist`);

const changesNothing = (current: ContextView, changes: ContextPut): boolean =>
  (changes.token_budget === undefined || changes.token_budget === current.token_budget) &&
  (changes.trigger_ratio === undefined || changes.trigger_ratio === current.trigger_ratio) &&
  (changes.policy === undefined ||
    (changes.policy.strategy === current.policy.strategy &&
      jsonEqual(changes.policy.config, current.policy.config))) &&
  (changes.metadata === undefined || jsonEqual(changes.metadata, current.metadata));

/** The estimator's counts, checked: a broken estimator must not corrupt replicated state. */
const checkedCounts = (counts: readonly number[], partCount: number): number[] => {
  if (counts.length !== partCount || !counts.every((count) => Number.isSafeInteger(count) && count >= 0)) {
    throw new Error(
      `token estimator returned ${counts.length} counts for ${partCount} parts, or invalid counts`,
    );
  }
  return [...counts];
};
