// Which groups this node serves: a local replica counts while placement still wants it here, or
// while it leads (a leader's view is current). One that was moved away may never hear of its
// removal, and its idea of the leader goes stale, so it must not answer reads or name leaders.

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import type { ClusterMember } from '../membership/membership.js';
import type { MembershipStateMachine } from '../membership/membership-state-machine.js';
import { desiredFor } from './replica-mover.js';

export interface Serving {
  /** Whether this node's replica of `group` is current (see above). */
  readonly serves: (group: GroupId) => boolean;
  /** Whether placement wants a replica of `group` on this node, given `members`. */
  readonly placedHere: (group: GroupId, members: readonly ClusterMember[]) => boolean;
}

export const createServing = (options: {
  readonly nodeId: NodeId;
  readonly host: Pick<ConsensusHost, 'leaderOf' | 'status'>;
  readonly membership: MembershipStateMachine;
  readonly metaGroup: GroupId;
}): Serving => {
  const { nodeId, host, membership, metaGroup } = options;
  /** Per group, whether placement wants a replica here; cached (it hashes) until the list changes. */
  const placed = new Map<GroupId, boolean>();
  membership.onChange(() => placed.clear());
  const placedHere = (group: GroupId, members: readonly ClusterMember[]): boolean => {
    let here = placed.get(group);
    if (here === undefined) {
      const desired = desiredFor(group, metaGroup, members);
      here = desired.voters.includes(nodeId) || desired.learners.includes(nodeId);
      placed.set(group, here);
    }
    return here;
  };
  const serves = (group: GroupId): boolean => {
    if (host.leaderOf(group) === nodeId) return true;
    const members = membership.members();
    if (members.length > 0 && !placedHere(group, members)) return false;
    return host.leaderOf(group) !== null || host.status(group) !== undefined;
  };
  return { serves, placedHere };
};
