// Moves replicas to where placement wants them. Every node, for each group it leads, compares the
// group's membership with placement over the active members and takes the next single step
// (reconcile.ts); the leader is the one node that can propose the change, so nodes need not
// coordinate, and a leader change just hands the work to the next leader. A move streams a
// snapshot to the new replica, so only a bounded number of groups per node move at once, leaving
// the appends room; steps that finish a move are never held back.

import type {
  ConsensusHost,
  GroupStatus,
  ConfChange,
  ConfState,
  GroupId,
  NodeId,
} from '../../../raft/index.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ClusterMember } from '../membership/membership.js';
import { activeIds, currentMembers } from '../membership/membership.js';
import { votersFor } from './placement.js';
import type { Desired } from './reconcile.js';
import { nextStep } from './reconcile.js';

export interface ReplicaMoverOptions {
  readonly nodeId: NodeId;
  readonly host: Pick<
    ConsensusHost,
    'groups' | 'leaderOf' | 'status' | 'changeMembership' | 'transferLeader'
  >;
  readonly metaGroup: GroupId;
  /** The member list, or undefined while it is not known (then nothing moves). */
  readonly members: () => readonly ClusterMember[] | undefined;
  /** Groups this node leads that may be moving at once. Default 8. */
  readonly movesMax?: number;
  readonly changeTimeoutMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** The clock for settled-round skipping (tests pass their own). Default Date.now. */
  readonly now?: () => number;
}

/** Once every led group is where placement wants it, a full pass runs this often while nothing changes. */
export const SETTLED_RECHECK_MS = 2_000;

export interface ReplicaMover {
  /** One pass over the groups this node leads; starts at most one step per group. */
  round(): void;
  /** Groups with a membership change this node proposed and is waiting for. */
  pending(): number;
}

/** Where placement wants the group's replicas: the meta group keeps a learner on every other member. */
export const desiredFor = (
  group: GroupId,
  metaGroup: GroupId,
  members: readonly ClusterMember[],
): Desired => {
  const voters = votersFor(group, activeIds(members));
  if (group !== metaGroup) return { voters, learners: [] };
  // Every member (leaving ones too, until forgotten) follows the member list through its learner.
  const learners = currentMembers(members)
    .map((member) => member.nodeId)
    .filter((id) => !voters.includes(id));
  return { voters, learners };
};

export const createReplicaMover = (options: ReplicaMoverOptions): ReplicaMover => {
  const { host, nodeId, metaGroup } = options;
  const movesMax = options.movesMax ?? 8;
  const inFlight = new Set<GroupId>();
  const now = options.now ?? Date.now;
  /**
   * What the last full pass saw, when it found every led group settled: the member list and the
   * groups led. A pass reads every led group's status (a copy of its progress and conf), which cost
   * about 2 % of a busy node's CPU at 5 passes a second; while neither input changes and nothing
   * moves, only a pass every SETTLED_RECHECK_MS looks again.
   */
  let settled: { readonly inputs: string; readonly until: number } | undefined;

  /** A move has begun: a wanted voter is a learner, or the group has more voters than it wants. */
  const moving = (conf: ConfState, desired: Desired): boolean =>
    conf.learners.some((node) => desired.voters.includes(node)) || conf.voters.length > desired.voters.length;

  const propose = (group: GroupId, change: ConfChange): void => {
    inFlight.add(group);
    host
      .changeMembership(group, change, { timeoutMs: options.changeTimeoutMs })
      .then(
        (outcome) => {
          if (outcome.ok) {
            options.logger.info(
              {
                type: 'replica_moved',
                group,
                change,
                voters: outcome.result.voters,
                learners: outcome.result.learners,
              },
              `group ${group}: ${change.type} ${change.node}`,
            );
          }
        },
        (error: unknown) =>
          options.logger.warn(
            { type: 'replica_move_failed', group, change, err: error },
            'membership change failed',
          ),
      )
      .finally(() => inFlight.delete(group));
  };

  return {
    pending: () => inFlight.size,
    round: () => {
      const members = options.members();
      if (members === undefined || members.length === 0) return;
      const ledGroups = host.groups().filter((group) => host.leaderOf(group) === nodeId);
      const inputs = `${JSON.stringify(members)}|${ledGroups.join(',')}`;
      if (settled !== undefined && settled.inputs === inputs && now() < settled.until) return;
      settled = undefined;
      let allSettled = inFlight.size === 0;
      // A removed node is unknown: any replica still on it is dropped.
      const known = new Set(currentMembers(members).map((member) => member.nodeId));
      // One status per led group and round (a leader's status copies its progress and conf): nothing
      // changes between the two passes, since proposals and transfers only queue for the next turn.
      const led: { group: GroupId; desired: Desired; status: GroupStatus; isMoving: boolean }[] = [];
      let movingCount = 0;
      for (const group of ledGroups) {
        const status = host.status(group);
        if (status?.role !== 'leader') continue;
        const desired = desiredFor(group, metaGroup, members);
        const isMoving = moving(status.conf, desired);
        if (group !== metaGroup && (inFlight.has(group) || isMoving)) movingCount += 1;
        if (!inFlight.has(group)) led.push({ group, desired, status, isMoving });
      }
      for (const { group, desired, status, isMoving } of led) {
        const alreadyMoving = group === metaGroup || isMoving;
        const decision = nextStep({
          self: nodeId,
          status,
          desired,
          known,
          mayStartMove: alreadyMoving || movingCount < movesMax,
        });
        if (decision.kind !== 'settled') allSettled = false;
        switch (decision.kind) {
          case 'settled':
          case 'waiting':
            break;
          case 'transfer':
            host.transferLeader(group, decision.to);
            break;
          case 'add_learner':
            if (!alreadyMoving && desired.voters.includes(decision.node)) movingCount += 1;
            propose(group, { type: 'add_learner', node: decision.node });
            break;
          case 'promote':
          case 'remove':
            propose(group, { type: decision.kind, node: decision.node });
            break;
        }
      }
      if (allSettled && led.length === ledGroups.length) {
        settled = { inputs, until: now() + SETTLED_RECHECK_MS };
      }
    },
  };
};
