// The forwarding service between fastpaca nodes: a node that receives a write for a group it does
// not lead hands the encoded command to the group's leader, which proposes it and answers with the
// outcome. Defined in code like the Raft transport (no protobuf step); payloads are msgpack.
//
//   Propose (unary)  request:  [group, timeoutMs, command bytes]
//                    response: the ProposeOutcome, the command's result included
//   ProposeStream    the same requests and outcomes, many per message, over one long-lived bidi
//   (bidi)           stream per peer (forward-stream.ts): what nodes use, since a unary gRPC call
//                    costs far more CPU than the proposal it carries
//   ServiceCall      a ContextService read run by a node that hosts the group, for a node that
//   (unary)          does not (remote-call-protocol.ts)

import type { ServiceDefinition } from '@grpc/grpc-js';
import { Packr } from 'msgpackr';

import type { FailureCode, ProposeOutcome, GroupId } from '../../../raft/index.js';
import { bytesMethod } from '../../../net/grpc.js';
import type { CommandResult } from '../../context/results.js';
import { serviceCallMethod } from './remote-call-protocol.js';

export const FORWARD_PROPOSE_PATH = '/fastpaca.cluster.v1.Forward/Propose';

/** Longest wait a forwarded proposal may ask of the leader. */
export const forwardTimeoutMsMax = 600_000;

export const FORWARD_STREAM_PATH = '/fastpaca.cluster.v1.Forward/ProposeStream';

export const forwardService: ServiceDefinition = {
  Propose: bytesMethod(FORWARD_PROPOSE_PATH, false, false),
  ProposeStream: bytesMethod(FORWARD_STREAM_PATH, true, true),
  ServiceCall: serviceCallMethod,
};

export interface ForwardRequest {
  readonly group: GroupId;
  readonly timeoutMs: number;
  readonly data: Uint8Array;
}

export class ForwardCodecError extends Error {
  override readonly name = 'ForwardCodecError';
}

// Plain maps only: the record extension's shared structures would tie the encoding to each
// process's history, and these bytes cross between processes.
export const packr = new Packr({ useRecords: false, variableMapSize: true });

export const encodeForwardRequest = (request: ForwardRequest): Uint8Array =>
  packr.pack([request.group, request.timeoutMs, request.data]);

export const decodeForwardRequest = (bytes: Uint8Array): ForwardRequest => {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new ForwardCodecError(`undecodable forward request: ${(error as Error).message}`);
  }
  if (!Array.isArray(value) || value.length !== 3) throw new ForwardCodecError('forward request shape');
  const [group, timeoutMs, data] = value as unknown[];
  return checkForwardRequest(group, timeoutMs, data);
};

/** Validates the three fields of a request (unary or streamed); throws ForwardCodecError. */
export const checkForwardRequest = (group: unknown, timeoutMs: unknown, data: unknown): ForwardRequest => {
  if (typeof group !== 'number' || !Number.isInteger(group) || group < 0 || group > 0xffff) {
    throw new ForwardCodecError('forward request group');
  }
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ForwardCodecError('forward request timeout');
  }
  if (!(data instanceof Uint8Array) || data.length === 0) throw new ForwardCodecError('forward request data');
  return { group, timeoutMs: Math.min(timeoutMs, forwardTimeoutMsMax), data };
};

const failureCodes: ReadonlySet<string> = new Set<FailureCode>([
  'NOT_LEADER',
  'OVERLOADED',
  'TIMEOUT',
  'SHUTTING_DOWN',
  'NO_GROUP',
  'DROPPED',
]);

/** The plain value an outcome travels as (packed alone, or inside a stream answer). */
export const forwardOutcomeValue = (outcome: ProposeOutcome<CommandResult>): object =>
  outcome.ok
    ? { ok: true, index: outcome.index, result: outcome.result }
    : { ok: false, code: outcome.code, leader: outcome.leader ?? null };

export const encodeForwardOutcome = (outcome: ProposeOutcome<CommandResult>): Uint8Array =>
  packr.pack(forwardOutcomeValue(outcome));

/**
 * The leader's answer. The result is trusted as a CommandResult: it comes from an authenticated
 * peer running the same state machine, and is only checked for its outer shape here.
 */
export const decodeForwardOutcome = (bytes: Uint8Array): ProposeOutcome<CommandResult> => {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new ForwardCodecError(`undecodable forward outcome: ${(error as Error).message}`);
  }
  return checkForwardOutcome(value);
};

/** Validates the outer shape of an outcome value; throws ForwardCodecError. */
export const checkForwardOutcome = (value: unknown): ProposeOutcome<CommandResult> => {
  if (typeof value !== 'object' || value === null) throw new ForwardCodecError('forward outcome shape');
  const record = value as Record<string, unknown>;
  if (record.ok === true) {
    const { index, result } = record;
    if (typeof index !== 'number' || typeof result !== 'object' || result === null) {
      throw new ForwardCodecError('forward outcome success');
    }
    return { ok: true, index, result: result as CommandResult };
  }
  const { code, leader } = record;
  if (typeof code !== 'string' || !failureCodes.has(code))
    throw new ForwardCodecError('forward outcome code');
  return { ok: false, code: code as FailureCode, leader: typeof leader === 'string' ? leader : null };
};
