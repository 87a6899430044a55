// The cluster's periodic work once formation has started: noting which groups have a leader,
// balancing leadership, reading the member list back, moving replicas to where placement wants them,
// reporting removed members gone, and deleting replicas that moved away. Each round is a timer;
// nothing but leader observation runs before this node has joined.

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import type { Formation } from '../membership/formation.js';
import type { MemberChanges } from '../membership/member-changes.js';
import type { MembershipStateMachine } from '../membership/membership-state-machine.js';
import { balanceLeadersOnce } from '../placement/leader-balancer.js';
import type { ReplicaJanitor } from '../placement/replica-janitor.js';
import { desiredFor } from '../placement/replica-mover.js';
import type { ReplicaMover } from '../placement/replica-mover.js';

export interface RoundIntervals {
  /** Leadership balancing rounds. Default 1000 ms; the first waits one round after joining. */
  readonly balanceIntervalMs?: number;
  /** Transfers started per round. Default 32: a node that won ~40 extra groups at formation hands them
   * over within two rounds. */
  readonly transfersPerRound?: number;
  /** Replica-move rounds (reconcile.ts). Default 200 ms. */
  readonly moveIntervalMs?: number;
  /** How often to look for replicas that moved away, to delete them. Default 2000 ms. */
  readonly janitorIntervalMs?: number;
}

export interface RoundsOptions {
  readonly nodeId: NodeId;
  readonly metaGroup: GroupId;
  readonly host: Pick<ConsensusHost, 'groups' | 'status' | 'transferLeader'>;
  readonly formation: Formation;
  readonly membership: MembershipStateMachine;
  readonly memberChanges: MemberChanges;
  readonly mover: ReplicaMover;
  readonly janitor: ReplicaJanitor | undefined;
  /** Notes which of the data groups have a leader (ClusterConsensus.observeLeaders). */
  readonly observeLeaders: () => void;
  readonly observeIntervalMs: number;
  readonly intervals: RoundIntervals;
  /** Peers shutting down: the balancer hands them no group. */
  readonly draining: (node: NodeId) => boolean;
}

/** Starts every round; returns the timers (clear them to stop). */
export const startRounds = (options: RoundsOptions): NodeJS.Timeout[] => {
  const { formation, membership, intervals } = options;
  const timers: NodeJS.Timeout[] = [];
  timers.push(setInterval(options.observeLeaders, options.observeIntervalMs));
  let roundsJoined = 0;
  timers.push(
    setInterval(() => {
      if (!formation.joined()) return;
      // Let the first elections settle before moving leaders around.
      roundsJoined += 1;
      if (roundsJoined < 2) return;
      balanceLeadersOnce(
        options.host,
        options.nodeId,
        intervals.transfersPerRound ?? 32,
        (group, voters) => {
          // A group whose voters are not yet placement's may be handed to a voter about to go.
          const members = membership.members();
          if (members.length === 0) return false;
          const wanted = desiredFor(group, options.metaGroup, members).voters;
          return voters.length !== wanted.length || voters.some((node) => !wanted.includes(node));
        },
        options.draining,
      );
    }, intervals.balanceIntervalMs ?? 1_000),
  );
  timers.push(
    setInterval(() => {
      options.memberChanges.load();
      if (!formation.joined()) return;
      options.mover.round();
      options.memberChanges.purgeGone();
    }, intervals.moveIntervalMs ?? 200),
  );
  const janitor = options.janitor;
  if (janitor !== undefined) {
    timers.push(
      setInterval(() => {
        if (formation.joined()) void janitor.round();
      }, intervals.janitorIntervalMs ?? 2_000),
    );
  }
  return timers;
};
