// The hosting node's side of a remote service call: authenticates the caller with the cluster secret
// (like forwarded writes: a PUT context changes state), runs the operation on its own local
// ContextService and answers with the result or the ServiceError. It never forwards again: a group
// it does not serve is answered "not here" and the caller tries another replica, so calls cannot loop.

import { status } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';

import type { GroupId } from '../../../raft/index.js';
import type { SecretCheck } from '../../../net/auth.js';
import type { ContextPut } from '../../api/domain.js';
import { isServiceError } from '../../api/errors.js';
import { groupOf } from '../../context/routing.js';
import type { ContextService } from '../../api/service.js';
import type { PullRequest, StreamPullTarget } from '../../stream/stream-pull.js';
import type { ServiceCallAnswer, ServiceCallRequest } from './remote-call-protocol.js';
import { decodeServiceCall, encodeServiceAnswer, ServiceCallCodecError } from './remote-call-protocol.js';

/** What a node needs to serve remote calls: its local (never forwarding) service and placement. */
export interface LocalServiceTarget {
  readonly service: ContextService;
  readonly serves: (group: GroupId) => boolean;
  readonly groupCount: number;
  /** A failure that is not a ServiceError: the caller renders a 500, the cause is logged here. */
  readonly onInternal: (error: unknown, request: ServiceCallRequest) => void;
  /** Answers live-stream pulls of peers without a replica; absent: pulls are answered "not here". */
  readonly streams?: StreamPullTarget;
}

export interface ServiceCallServerOptions {
  readonly checkSecret: SecretCheck;
  /** Undefined until the node's service exists: calls before that are answered "not here". */
  readonly target: () => LocalServiceTarget | undefined;
}

/** This node cannot run the operation (no stream service yet): the caller tries another replica. */
class NotServedHere extends Error {}

const grpcError = (code: status, details: string): Error & { code: status; details: string } =>
  Object.assign(new Error(details), { code, details });

/**
 * Calls the named method. The arguments are trusted as the method's: they come from an
 * authenticated peer's HTTP layer, which checked their shapes, and the service validates them again.
 */
const invoke = (target: LocalServiceTarget, request: ServiceCallRequest): Promise<unknown> => {
  const { service } = target;
  const args = request.args;
  const id = args[0] as string;
  switch (request.operation) {
    case 'streamPull': {
      if (target.streams === undefined) throw new NotServedHere();
      return target.streams(id, args[1] as PullRequest);
    }
    case 'putContext':
      return service.putContext(id, args[1] as ContextPut);
    case 'getContext':
      return service.getContext(id);
    case 'tail':
      return service.tail(id, args[1] as number, args[2] as number);
    case 'messages':
      return service.messages(id, args[1] as number, args[2] as number);
    case 'llmContext':
      return service.llmContext(id, args[1] as { budgetTokens?: number; ifVersion?: number });
  }
};

/** Runs one decoded call; never throws. */
export const runServiceCall = async (
  target: LocalServiceTarget,
  request: ServiceCallRequest,
): Promise<ServiceCallAnswer> => {
  const contextId = request.args[0];
  // An id that is not a string is the service's own error (invalid_context_id) to give.
  if (typeof contextId === 'string' && !target.serves(groupOf(contextId, target.groupCount))) {
    return { ok: false, notHere: true };
  }
  try {
    const value = await invoke(target, request);
    return { ok: true, value };
  } catch (error) {
    if (error instanceof NotServedHere) return { ok: false, notHere: true };
    if (isServiceError(error) && error.code !== 'internal') {
      return {
        ok: false,
        error: {
          code: error.code,
          message: error.message,
          ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
        },
      };
    }
    target.onInternal(error, request);
    return { ok: false, internal: true };
  }
};

export const handleServiceCall = (
  options: ServiceCallServerOptions,
  call: ServerUnaryCall<Uint8Array, Uint8Array>,
  callback: sendUnaryData<Uint8Array>,
): void => {
  if (!options.checkSecret(call.metadata)) {
    callback(grpcError(status.UNAUTHENTICATED, 'missing or wrong cluster secret'));
    return;
  }
  let request: ServiceCallRequest;
  try {
    request = decodeServiceCall(call.request);
  } catch (error) {
    const details = error instanceof ServiceCallCodecError ? error.message : 'bad request';
    callback(grpcError(status.INVALID_ARGUMENT, details));
    return;
  }
  const target = options.target();
  if (target === undefined) {
    callback(null, encodeServiceAnswer({ ok: false, notHere: true }));
    return;
  }
  void runServiceCall(target, request).then((answer) => callback(null, encodeServiceAnswer(answer)));
};
