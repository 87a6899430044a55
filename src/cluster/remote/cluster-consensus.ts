// The Consensus of a cluster node: a write goes to the group's leader wherever it is (locally, or
// forwarded over gRPC), and a read waits for a ReadIndex barrier, which the Raft core serves on
// followers too (it asks the leader for the commit index), so reads are never forwarded here. A
// node that holds no replica of a group at all hands the whole operation to one that does, a level
// up (remote-service.ts).
//
// During a leader change a request waits briefly and retries, but only when the failed attempt
// certainly did not enter any log: NOT_LEADER (refused before proposing), DROPPED (another entry
// won its index) or a forward that never reached the leader. A timed-out or cut-off attempt may
// still commit, so it is answered as a timeout rather than retried into a duplicate.

import { setTimeout as sleep } from 'node:timers/promises';

import type {
  ConsensusHost,
  Failure,
  ProposeOutcome,
  ReadOutcome,
  GroupId,
  NodeId,
} from '../../../raft/index.js';
import { encodeEntry } from '../../context/consensus.js';
import type { Consensus } from '../../context/consensus.js';
import type { CommandResult } from '../../context/results.js';
import type { Forwarder } from './forward-client.js';

export interface ClusterConsensusOptions {
  readonly nodeId: NodeId;
  readonly host: ConsensusHost<CommandResult>;
  readonly forwarder: Forwarder;
  /** Whole budget of one write, retries included. */
  readonly proposeTimeoutMs: number;
  /** Whole budget of one read barrier, retries included. */
  readonly readTimeoutMs: number;
  /**
   * How long a group may be without a known leader before requests fail at once (503) instead of
   * waiting: about two election timeouts, after which a missing leader means a lost quorum.
   */
  readonly leaderWaitMs: number;
  /** Largest log entry a command may become. Default entryBytesMax (consensus.ts). */
  readonly entryBytesMax?: number;
  /** Pause between attempts. Default 25 ms. */
  readonly retryDelayMs?: number;
  /** One read attempt waits at most this long (a read sent to a leader that died is lost). Default 1000. */
  readonly readAttemptMs?: number;
  readonly now?: () => number;
  /** A forward failed in a way worth logging (wrong secret, an answer that does not decode). */
  readonly onForwardProblem?: (peer: NodeId, reason: string) => void;
  /**
   * Nodes that should hold `group`, for a group this node does not host (with more nodes than
   * replicas): a write is forwarded to one of them, and on to the leader it names.
   */
  readonly replicasOf?: (group: GroupId) => readonly NodeId[];
  /**
   * Whether this node's replica of `group` is current: a replica placement moved away may never
   * hear of its removal, and its idea of the leader goes stale. Default: any local replica.
   */
  readonly serves?: (group: GroupId) => boolean;
}

const timeout = (message: string): Failure => ({ ok: false, code: 'TIMEOUT', message });

export interface ClusterConsensus extends Consensus {
  /** Proposes already-encoded bytes to `group` (the meta group's commands), forwarding like writes. */
  proposeBytes(group: GroupId, data: Uint8Array): Promise<ProposeOutcome<CommandResult>>;
  /**
   * Notes which groups have a leader right now. Called periodically so "leaderless for how long"
   * is measured from the last time a leader was seen, not from the last request to the group.
   */
  observeLeaders(groups: readonly GroupId[]): void;
}

export const createClusterConsensus = (options: ClusterConsensusOptions): ClusterConsensus => {
  const { host, nodeId, forwarder } = options;
  const now = options.now ?? Date.now;
  const retryDelayMs = options.retryDelayMs ?? 25;
  const readAttemptMs = options.readAttemptMs ?? 1_000;
  /** Since when each group has had no known leader (absent: it has one, or we never looked). */
  const leaderlessSince = new Map<GroupId, number>();

  /** The group's leader, tracking how long it has been missing. */
  const leaderOf = (group: GroupId): NodeId | null => {
    const leader = host.leaderOf(group);
    if (leader === null) {
      if (!leaderlessSince.has(group)) leaderlessSince.set(group, now());
    } else leaderlessSince.delete(group);
    return leader;
  };

  /** True once the group has been leaderless for longer than leaderWaitMs: give up at once. */
  const quorumLost = (group: GroupId): boolean => {
    const since = leaderlessSince.get(group);
    return since !== undefined && now() - since > options.leaderWaitMs;
  };

  /** Whether this node has a replica of `group` (leaderOf first: status() is not free). */
  const hosts = (group: GroupId): boolean => {
    if (options.replicasOf === undefined) return true;
    if (options.serves !== undefined) return options.serves(group);
    return host.leaderOf(group) !== null || host.status(group) !== undefined;
  };

  /** For groups hosted elsewhere: the leader last named by a replica, and a turn counter. */
  const remoteLeaders = new Map<GroupId, NodeId>();
  let remoteTurn = 0;

  /** Where to send a write for a group this node has no replica of. */
  const remoteTarget = (group: GroupId): NodeId | null => {
    const hinted = remoteLeaders.get(group);
    if (hinted !== undefined) return hinted;
    const replicas = (options.replicasOf?.(group) ?? []).filter((node) => node !== nodeId);
    remoteTurn += 1;
    return replicas[remoteTurn % Math.max(1, replicas.length)] ?? null;
  };

  const unavailable = (message: string): Failure => ({
    ok: false,
    code: 'NOT_LEADER',
    leader: null,
    message,
  });

  const proposeOnce = async (
    group: GroupId,
    data: Uint8Array,
    remainingMs: number,
  ): Promise<{ outcome: ProposeOutcome<CommandResult>; retry: boolean }> => {
    const hosted = hosts(group);
    const leader = hosted ? leaderOf(group) : remoteTarget(group);
    if (leader === null) return { outcome: unavailable('no leader'), retry: true };
    if (leader === nodeId && hosted) {
      const outcome = await host.propose(group, data, { timeoutMs: remainingMs });
      return { outcome, retry: !outcome.ok && (outcome.code === 'NOT_LEADER' || outcome.code === 'DROPPED') };
    }
    const forwarded = await forwarder.propose(leader, group, data, remainingMs);
    switch (forwarded.kind) {
      case 'outcome': {
        const outcome = forwarded.outcome;
        if (!hosted) {
          // Keep a leader that answered; follow a replica's pointer to its leader; forget the rest.
          if (outcome.ok) remoteLeaders.set(group, leader);
          else if (outcome.leader !== undefined && outcome.leader !== null && outcome.leader !== nodeId)
            remoteLeaders.set(group, outcome.leader);
          else remoteLeaders.delete(group);
        }
        // NO_GROUP: the peer does not host the group (yet); it has not proposed anything either.
        const retry =
          !outcome.ok &&
          (outcome.code === 'NOT_LEADER' || outcome.code === 'DROPPED' || outcome.code === 'NO_GROUP');
        return { outcome, retry };
      }
      case 'unsent':
        remoteLeaders.delete(group);
        if (!forwarded.reason.startsWith('No connection'))
          options.onForwardProblem?.(leader, forwarded.reason);
        return { outcome: unavailable(`leader unreachable: ${forwarded.reason}`), retry: true };
      case 'ambiguous':
        options.onForwardProblem?.(leader, forwarded.reason);
        return { outcome: timeout(`forward to the leader failed: ${forwarded.reason}`), retry: false };
    }
  };

  const propose = async (group: GroupId, data: Uint8Array): Promise<ProposeOutcome<CommandResult>> => {
    const deadline = now() + options.proposeTimeoutMs;
    for (;;) {
      const remainingMs = deadline - now();
      if (remainingMs <= 0) return timeout('no leader accepted the write in time');
      const { outcome, retry } = await proposeOnce(group, data, remainingMs);
      // quorumLost only knows hosted groups; a remote one is retried until the deadline.
      if (!retry || (hosts(group) && quorumLost(group))) return outcome;
      await sleep(Math.min(retryDelayMs, Math.max(0, deadline - now())));
    }
  };

  const read = async (group: GroupId): Promise<ReadOutcome> => {
    const deadline = now() + options.readTimeoutMs;
    for (;;) {
      const remainingMs = deadline - now();
      if (remainingMs <= 0) return timeout('no read barrier in time');
      leaderOf(group);
      if (quorumLost(group)) return unavailable('no leader');
      const outcome = await host.readIndex(group, { timeoutMs: Math.min(remainingMs, readAttemptMs) });
      // A read has no effect, so any failure but shutdown or overload may be retried.
      if (outcome.ok || outcome.code === 'SHUTTING_DOWN' || outcome.code === 'OVERLOADED') return outcome;
      // Reads are served from local state only: a group placed elsewhere (never here, or moved
      // away and maybe never told) gets one attempt, not the whole budget.
      if (!hosts(group)) return { ok: false, code: 'NO_GROUP', message: `group ${group} is not served here` };
      if (outcome.code === 'TIMEOUT' && deadline - now() <= 0) return outcome;
      await sleep(Math.min(retryDelayMs, Math.max(0, deadline - now())));
    }
  };

  return {
    propose: async (group, command) => propose(group, encodeEntry(command, options.entryBytesMax)),
    proposeBytes: propose,
    read,
    leaderOf: (group) => host.leaderOf(group),
    groupKv: (group) => host.groupKv(group),
    observeLeaders: (groups) => {
      for (const group of groups) leaderOf(group);
    },
  };
};
