// The remote service call between fastpaca nodes: a node that does not host a context's group asks a
// node that does to run one ContextService method and answer with its result, or with the
// ServiceError it threw, so the client sees the same response wherever it lands. JSON in both
// directions: the arguments and results are exactly what the HTTP layer parses and renders.
//
//   ServiceCall (unary)  request:  {"operation": name, "args": [...]}
//                        answer:   {"ok": true, "value": result}
//                                | {"ok": false, "error": {code, message, retryAfterSeconds?}}
//                                | {"ok": false, "internal": true}     (a non-ServiceError failure)
//                                | {"ok": false, "notHere": true}      (group not hosted: try another)

import type { MethodDefinition } from '@grpc/grpc-js';

import { bytesMethod } from '../../../net/grpc.js';
import { ErrorCodes } from '../../api/errors.js';
import type { ErrorCode } from '../../api/errors.js';

export const SERVICE_CALL_PATH = '/fastpaca.cluster.v1.Forward/ServiceCall';

export const serviceCallMethod: MethodDefinition<Uint8Array, Uint8Array> = bytesMethod(
  SERVICE_CALL_PATH,
  false,
  false,
);

/**
 * The ContextService methods that may run on another node: the ones that read local state (a
 * write that only proposes is forwarded to the leader by the consensus layer already); and
 * `streamPull`, one long poll of a live stream's events (src/stream/stream-pull.ts).
 */
export const remoteOperations = [
  'putContext',
  'getContext',
  'tail',
  'messages',
  'llmContext',
  'streamPull',
] as const;
export type RemoteOperation = (typeof remoteOperations)[number];

/** Operations with no effect: any failed attempt may be retried on another replica. */
export const readOnlyOperations: ReadonlySet<RemoteOperation> = new Set([
  'getContext',
  'tail',
  'messages',
  'llmContext',
  'streamPull',
]);

export interface ServiceCallRequest {
  readonly operation: RemoteOperation;
  readonly args: readonly unknown[];
}

export interface RemoteServiceErrorValue {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryAfterSeconds?: number;
}

export type ServiceCallAnswer =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: RemoteServiceErrorValue }
  | { readonly ok: false; readonly internal: true }
  | { readonly ok: false; readonly notHere: true };

export class ServiceCallCodecError extends Error {
  override readonly name = 'ServiceCallCodecError';
}

const operations: ReadonlySet<string> = new Set(remoteOperations);

const encodeJson = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value), 'utf8');

const decodeJson = (bytes: Uint8Array, what: string): unknown => {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (error) {
    throw new ServiceCallCodecError(`undecodable ${what}: ${(error as Error).message}`);
  }
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const encodeServiceCall = (request: ServiceCallRequest): Uint8Array => encodeJson(request);

/** Checks the outer shape only: the service validates its arguments as it does for HTTP. */
export const decodeServiceCall = (bytes: Uint8Array): ServiceCallRequest => {
  const value = decodeJson(bytes, 'service call');
  if (!isRecord(value)) throw new ServiceCallCodecError('service call shape');
  const { operation, args } = value;
  if (typeof operation !== 'string' || !operations.has(operation))
    throw new ServiceCallCodecError('service call operation');
  if (!Array.isArray(args)) throw new ServiceCallCodecError('service call arguments');
  return { operation: operation as RemoteOperation, args: args as unknown[] };
};

export const encodeServiceAnswer = (answer: ServiceCallAnswer): Uint8Array => encodeJson(answer);

/**
 * The hosting node's answer. A value is trusted as the operation's result: it comes from an
 * authenticated peer running the same service, and is only checked for its outer shape here.
 */
export const decodeServiceAnswer = (bytes: Uint8Array): ServiceCallAnswer => {
  const value = decodeJson(bytes, 'service answer');
  if (!isRecord(value)) throw new ServiceCallCodecError('service answer shape');
  if (value.ok === true) return { ok: true, value: value.value };
  if (value.notHere === true) return { ok: false, notHere: true };
  if (value.internal === true) return { ok: false, internal: true };
  const error = value.error;
  if (!isRecord(error)) throw new ServiceCallCodecError('service answer error');
  const { code, message, retryAfterSeconds } = error;
  if (typeof code !== 'string' || !Object.hasOwn(ErrorCodes, code) || typeof message !== 'string')
    throw new ServiceCallCodecError('service answer error code');
  return {
    ok: false,
    error: {
      code: code as ErrorCode,
      message,
      ...(typeof retryAfterSeconds === 'number' ? { retryAfterSeconds } : {}),
    },
  };
};
