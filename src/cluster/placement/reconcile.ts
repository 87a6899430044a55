// The next membership step of one group, chosen by its leader: the pure half of moving replicas.
// A group moves from its current voters to the voters placement wants by single-server changes,
// one at a time: add a missing node as a learner, promote it once it has caught up, and only when
// every wanted voter votes, remove a voter that is no longer wanted. The group therefore never has
// fewer voters than it will end with, so it never drops below the replication factor. A leader
// that must leave hands leadership to a caught-up wanted voter first; that voter then removes it.

import type { GroupStatus, NodeId } from '../../../raft/index.js';

export type ReconcileStep =
  | { readonly kind: 'add_learner'; readonly node: NodeId }
  | { readonly kind: 'promote'; readonly node: NodeId }
  | { readonly kind: 'remove'; readonly node: NodeId }
  | { readonly kind: 'transfer'; readonly to: NodeId };

export interface Desired {
  readonly voters: readonly NodeId[];
  /** Non-voting replicas placement wants (the meta group keeps one on every other member). */
  readonly learners: readonly NodeId[];
}

export interface ReconcileInput {
  readonly self: NodeId;
  /** The group as its leader sees it (role, conf, commit and every replica's progress). */
  readonly status: Pick<GroupStatus, 'role' | 'conf' | 'commit' | 'progress' | 'leadTransferee'>;
  readonly desired: Desired;
  /** Every node the member list knows (active or leaving). Unknown learners are removed. */
  readonly known: ReadonlySet<NodeId>;
  /**
   * Whether a wanted voter may be added now. The caller bounds how many groups move at once (each
   * move streams a snapshot), and always lets a group that is already moving go on.
   */
  readonly mayStartMove: boolean;
}

export type ReconcileDecision =
  | { readonly kind: 'settled' }
  /** Something is in progress (a learner catching up, a transfer); nothing to do this round. */
  | { readonly kind: 'waiting'; readonly why: string }
  | ReconcileStep;

const caughtUp = (status: ReconcileInput['status'], node: NodeId): boolean => {
  const progress = status.progress?.[node];
  return progress !== undefined && progress.state === 'replicate' && progress.match >= status.commit;
};

export const nextStep = (input: ReconcileInput): ReconcileDecision => {
  const { self, status, desired, known } = input;
  if (status.role !== 'leader') return { kind: 'waiting', why: 'not the leader' };
  if (status.leadTransferee !== null) return { kind: 'waiting', why: 'leadership transfer in progress' };
  const { voters, learners } = status.conf;
  // A member list that does not know a current voter is stale or still being filled in (just
  // after formation): acting on it could move a group away from nodes that are fine.
  for (const node of voters) {
    if (!known.has(node)) return { kind: 'waiting', why: `voter ${node} is not in the member list` };
  }
  const wantedVoters = new Set(desired.voters);
  const wantedLearners = new Set(desired.learners);
  if (wantedVoters.size === 0) return { kind: 'waiting', why: 'no active members' };

  // Learners nobody wants are dropped first: they hold no vote, so this is always safe.
  for (const node of learners) {
    if (!wantedVoters.has(node) && !wantedLearners.has(node)) return { kind: 'remove', node };
  }
  // A wanted voter that is a learner becomes a voter once it has the committed log.
  for (const node of desired.voters) {
    if (!learners.includes(node)) continue;
    if (caughtUp(status, node)) return { kind: 'promote', node };
    return { kind: 'waiting', why: `learner ${node} catching up` };
  }
  // A wanted voter missing altogether starts as a learner (a move: bounded by the caller).
  for (const node of desired.voters) {
    if (voters.includes(node)) continue;
    if (!input.mayStartMove) return { kind: 'waiting', why: 'too many groups moving' };
    return { kind: 'add_learner', node };
  }
  // Every wanted voter votes: surplus voters can go, the leader last (after handing over).
  const surplus = voters
    .filter((node) => !wantedVoters.has(node))
    .sort((a, b) => (a === self ? 1 : b === self ? -1 : a < b ? -1 : 1));
  const victim = surplus[0];
  if (victim !== undefined) {
    if (victim !== self) return { kind: 'remove', node: victim };
    const heir = desired.voters.find(
      (node) => node !== self && caughtUp(status, node) && status.progress?.[node]?.recentActive === true,
    );
    if (heir === undefined) return { kind: 'waiting', why: 'no caught-up voter to hand leadership to' };
    return { kind: 'transfer', to: heir };
  }
  // Wanted learners (meta group) that are missing: cheap, never voting, so not bounded.
  for (const node of desired.learners) {
    if (!voters.includes(node) && !learners.includes(node)) return { kind: 'add_learner', node };
  }
  return { kind: 'settled' };
};
