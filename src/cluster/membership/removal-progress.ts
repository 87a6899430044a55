// How far the removal of a node has got, from the status of every member: for each group, the
// view of the node that leads it (the highest term wins if two claim it) is the authoritative
// membership, since a replica that was removed may never hear of its own removal. A group with no
// reachable leader is unknown, so a removal is only reported done when every group is known.

import type { NodeId } from '../../../raft/index.js';

export interface GroupViewLike {
  readonly group: number;
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly leader: NodeId | null;
  readonly term: number;
}

export interface NodeStatusLike {
  readonly node_id: NodeId;
  readonly groups: readonly GroupViewLike[];
  readonly meta?: GroupViewLike;
}

export interface RemovalProgress {
  /** Data groups whose leader still counts the node as a voter or learner. */
  readonly hosting: readonly number[];
  /** Data groups no reachable node leads right now. */
  readonly unknown: readonly number[];
  /** Whether the meta group's leader still counts the node (undefined: no leader reachable). */
  readonly metaHosting: boolean | undefined;
}

const leaderViews = (
  views: readonly { readonly self: NodeId; readonly view: GroupViewLike }[],
): Map<number, GroupViewLike> => {
  const best = new Map<number, GroupViewLike>();
  for (const { self, view } of views) {
    if (view.leader !== self) continue;
    const current = best.get(view.group);
    if (current === undefined || view.term > current.term) best.set(view.group, view);
  }
  return best;
};

const counts = (view: GroupViewLike, node: NodeId): boolean =>
  view.voters.includes(node) || (view.learners ?? []).includes(node);

export const removalProgress = (statuses: readonly NodeStatusLike[], node: NodeId): RemovalProgress => {
  const groups = new Set<number>();
  const views: { self: NodeId; view: GroupViewLike }[] = [];
  const metaViews: { self: NodeId; view: GroupViewLike }[] = [];
  for (const status of statuses) {
    for (const view of status.groups) {
      groups.add(view.group);
      views.push({ self: status.node_id, view });
    }
    if (status.meta !== undefined) metaViews.push({ self: status.node_id, view: status.meta });
  }
  const leading = leaderViews(views);
  const hosting: number[] = [];
  const unknown: number[] = [];
  for (const group of [...groups].sort((a, b) => a - b)) {
    const view = leading.get(group);
    if (view === undefined) unknown.push(group);
    else if (counts(view, node)) hosting.push(group);
  }
  const meta = [...leaderViews(metaViews).values()][0];
  return { hosting, unknown, metaHosting: meta === undefined ? undefined : counts(meta, node) };
};
