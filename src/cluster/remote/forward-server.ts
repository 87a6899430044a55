// The leader's side of forwarding: authenticates the caller with the cluster secret (the same
// check as Raft traffic: a forwarded command is a write into any context), proposes the command
// locally and answers with the outcome. It never forwards again: a node that is no longer the
// leader answers NOT_LEADER and the caller, which knows the proposal was not accepted, retries.
// The same service carries remote service calls (remote-call-server.ts): reads run for nodes
// without a replica of the context's group.

import { status } from '@grpc/grpc-js';
import type {
  sendUnaryData,
  ServerDuplexStream,
  ServerUnaryCall,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';

import type { ProposeOutcome, GroupId } from '../../../raft/index.js';
import type { SecretCheck } from '../../../net/auth.js';
import type { CommandResult } from '../../context/results.js';
import { decodeForwardRequest, encodeForwardOutcome, ForwardCodecError } from './forward-protocol.js';
import { handleForwardStream } from './forward-stream.js';
import { handleServiceCall } from './remote-call-server.js';
import type { LocalServiceTarget } from './remote-call-server.js';

export type LocalPropose = (
  group: GroupId,
  data: Uint8Array,
  timeoutMs: number,
) => Promise<ProposeOutcome<CommandResult>>;

export interface ForwardServerOptions {
  readonly checkSecret: SecretCheck;
  /** Undefined until the Raft host is open: calls before that are answered NOT_LEADER. */
  readonly propose: () => LocalPropose | undefined;
  /** Undefined until the node's service exists: remote service calls before that get "not here". */
  readonly service?: () => LocalServiceTarget | undefined;
}

const grpcError = (code: status, details: string): Error & { code: status; details: string } =>
  Object.assign(new Error(details), { code, details });

export const createForwardService = (options: ForwardServerOptions): UntypedServiceImplementation => ({
  ServiceCall: (call: ServerUnaryCall<Uint8Array, Uint8Array>, callback: sendUnaryData<Uint8Array>) =>
    handleServiceCall(
      { checkSecret: options.checkSecret, target: () => options.service?.() },
      call,
      callback,
    ),
  ProposeStream: (call: ServerDuplexStream<Uint8Array, Uint8Array>) =>
    handleForwardStream(options.checkSecret, options.propose, call),
  Propose: (call: ServerUnaryCall<Uint8Array, Uint8Array>, callback: sendUnaryData<Uint8Array>) => {
    if (!options.checkSecret(call.metadata)) {
      callback(grpcError(status.UNAUTHENTICATED, 'missing or wrong cluster secret'));
      return;
    }
    let request;
    try {
      request = decodeForwardRequest(call.request);
    } catch (error) {
      const details = error instanceof ForwardCodecError ? error.message : 'bad request';
      callback(grpcError(status.INVALID_ARGUMENT, details));
      return;
    }
    const propose = options.propose();
    if (propose === undefined) {
      callback(null, encodeForwardOutcome({ ok: false, code: 'NOT_LEADER', leader: null }));
      return;
    }
    propose(request.group, request.data, request.timeoutMs).then(
      (outcome) => callback(null, encodeForwardOutcome(outcome)),
      (error: unknown) => callback(grpcError(status.INTERNAL, (error as Error).message)),
    );
  },
});
