// The only view the service has of Raft: propose a command to a context's group, wait for a
// linearizable read point, find a group's leader, read a group's state-machine space.
//
// `createLocalConsensus` serves a single node through the local host. A cluster node uses
// src/cluster/remote/cluster-consensus.ts behind the same interface (a write for a group led elsewhere
// becomes a gRPC call to its leader), so the service never changes.

import type {
  ConsensusHost,
  Failure,
  GroupKv,
  ProposeOutcome,
  ReadOutcome,
  GroupId,
  NodeId,
} from '../../raft/index.js';
import { PEER_MESSAGE_BYTES_MAX } from '../../net/grpc.js';
import { encodeCommand } from './commands.js';
import type { Command } from './commands.js';
import type { CommandResult } from './results.js';
import { ServiceError } from '../api/errors.js';

export interface Consensus {
  propose(group: GroupId, command: Command): Promise<ProposeOutcome<CommandResult>>;
  /** Resolves once this node has applied everything committed before the call. */
  read(group: GroupId): Promise<ReadOutcome>;
  leaderOf(group: GroupId): NodeId | null;
  groupKv(group: GroupId): GroupKv;
}

export interface LocalConsensusOptions {
  readonly proposeTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  /** Largest log entry a command may become. Default entryBytesMax. */
  readonly entryBytesMax?: number;
}

export const defaultRetryAfterSeconds = 1;

/**
 * Largest log entry a command may become: one frame must carry it to every replica, with room for
 * the frame around it (PEER_MESSAGE_BYTES_MAX, the same on every node). A body encodes to at most
 * about three times its size (invalid UTF-8 becomes U+FFFD, three bytes), so one within the body
 * limit (at most 64 MiB) always fits; the check keeps anything else out of the log.
 */
export const entryBytesMax = PEER_MESSAGE_BYTES_MAX - 1024 * 1024;

/** The command as a log entry; payload_too_large when it would be too large to replicate. */
export const encodeEntry = (command: Command, bytesMax: number = entryBytesMax): Uint8Array => {
  const data = encodeCommand(command);
  if (data.byteLength > bytesMax) {
    throw new ServiceError(
      'payload_too_large',
      `The request encodes to a ${data.byteLength}-byte log entry; the largest that can be replicated is ${bytesMax} bytes`,
    );
  }
  return data;
};

export const createLocalConsensus = (
  host: ConsensusHost<CommandResult>,
  options: LocalConsensusOptions = {},
): Consensus => {
  const proposeOptions =
    options.proposeTimeoutMs === undefined ? undefined : { timeoutMs: options.proposeTimeoutMs };
  const readOptions = options.readTimeoutMs === undefined ? undefined : { timeoutMs: options.readTimeoutMs };
  return {
    propose: async (group, command) =>
      host.propose(group, encodeEntry(command, options.entryBytesMax), proposeOptions),
    read: (group) => host.readIndex(group, readOptions),
    leaderOf: (group) => host.leaderOf(group),
    groupKv: (group) => host.groupKv(group),
  };
};

/** The one mapping of Raft failures to client-visible errors; all are retryable 503s. */
export const failureToServiceError = (failure: Failure): ServiceError => {
  // The host's own message stays in the logs: it may name nodes and internals.
  const retry = { retryAfterSeconds: defaultRetryAfterSeconds };
  switch (failure.code) {
    case 'TIMEOUT':
      return new ServiceError(
        'raft_timeout',
        'The replicated log did not answer in time; retry shortly',
        retry,
      );
    case 'OVERLOADED':
      return new ServiceError('overloaded', 'The node is overloaded; retry shortly', retry);
    case 'NOT_LEADER':
    case 'NO_GROUP':
    case 'SHUTTING_DOWN':
    case 'DROPPED':
      return new ServiceError(
        'raft_unavailable',
        `The replicated log is unavailable (${failure.code}); retry shortly`,
        retry,
      );
  }
};

/** The command's result, or the failure as a ServiceError. */
export const proposed = <Result>(outcome: ProposeOutcome<Result>): Result => {
  if (!outcome.ok) throw failureToServiceError(outcome);
  return outcome.result;
};

/** Throws the failure of a read barrier as a ServiceError. */
export const readable = (outcome: ReadOutcome): void => {
  if (!outcome.ok) throw failureToServiceError(outcome);
};
