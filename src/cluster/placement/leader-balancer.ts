// Spreads group leadership over the nodes: each group has a preferred leader (placement.ts), and a
// node leading a group it is not preferred for hands the group over once the preferred replica is
// healthy and caught up. Each node only gives away groups it leads, so nodes need not coordinate,
// and rounds are rate-limited so a restarted node gets its groups back gradually rather than in one
// burst of elections.

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import { preferredLeader } from './placement.js';

/** Entries the preferred replica may still lack: the core finishes the catch-up before handing over. */
const catchUpSlackEntries = 64;

/**
 * One round: starts at most `transfersMax` leadership transfers of groups this node leads to their
 * preferred leader. Returns how many it started.
 */
export const balanceLeadersOnce = (
  host: Pick<ConsensusHost, 'groups' | 'status' | 'transferLeader'>,
  nodeId: NodeId,
  transfersMax: number,
  /** Groups whose replicas are moving: leadership is the replica mover's business there. */
  moving: (group: GroupId, voters: readonly NodeId[]) => boolean = () => false,
  /** Peers shutting down (draining-peers.ts): they are handed nothing. */
  draining: (node: NodeId) => boolean = () => false,
): number => {
  let started = 0;
  for (const group of host.groups()) {
    if (started >= transfersMax) break;
    const status = host.status(group);
    if (status?.role !== 'leader' || status.leadTransferee !== null) continue;
    if (moving(group, status.conf.voters)) continue;
    const preferred = preferredLeader(group, status.conf.voters);
    if (preferred === undefined || preferred === nodeId || draining(preferred)) continue;
    const progress = status.progress?.[preferred];
    // A replica not heard from lately may be down: handing it the group would stall writes until
    // the transfer times out.
    if (progress === undefined || !progress.recentActive || progress.state !== 'replicate') continue;
    if (progress.match + catchUpSlackEntries < status.lastIndex) continue;
    host.transferLeader(group, preferred);
    started += 1;
  }
  return started;
};
