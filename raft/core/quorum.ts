// Majority arithmetic over the voters of one configuration. Learners are never passed in here, so
// they can neither elect a leader nor make an entry committed.

import type { Index, NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export const quorumSize = (voterCount: number): number => Math.floor(voterCount / 2) + 1;

// Reused across calls: the core is synchronous, so one buffer per process is enough and keeps the
// per-AppResp commit computation allocation-free.
const matchScratch: Index[] = [];

/**
 * The highest index that a majority of `voters` hold, given each voter's acked index. With no voters
 * the result is 0 (nothing can commit).
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => Index): Index {
  const n = voters.length;
  if (n === 0) return 0;
  matchScratch.length = n;
  for (let i = 0; i < n; i++) {
    // Insertion sort, descending: n is a handful of replicas.
    const value = matchOf(voters[i] as NodeId);
    let j = i - 1;
    while (j >= 0 && (matchScratch[j] as Index) < value) {
      matchScratch[j + 1] = matchScratch[j] as Index;
      j--;
    }
    matchScratch[j + 1] = value;
  }
  return matchScratch[quorumSize(n) - 1] as Index;
}

/** Tallies granted/rejected votes among `voters`; answers from non-voters are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const needed = quorumSize(voters.length);
  if (granted >= needed) return 'won';
  if (voters.length - rejected < needed) return 'lost';
  return 'pending';
}

/** Whether the voters in `present` form a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], present: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of voters) if (present(id)) count++;
  return count >= quorumSize(voters.length);
}
