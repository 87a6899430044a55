// The start-up log fence (RawNode.fenceLog): a replica restored from a copy of its directory may lack
// entries it acknowledged after the copy was taken, entries committed with its acknowledgement. If it
// then votes for a candidate that lacks them too, that candidate can win and overwrite a committed
// entry. Fenced at the newest entry its peers know committed, it refuses such candidates and still
// votes for any candidate that holds the entry. Shown on real RawNodes, with and without pre-vote:
// the unfenced copy does elect a leader without the committed entry (so the test can fail).

import { describe, expect, it } from 'vitest';

import { MessageType, type Message } from '../../../raft/core/types.js';
import { Cluster, isType, type Disk } from './cluster.js';

const copyOf = (disk: Disk): Disk => ({
  hardState: { ...disk.hardState },
  snapshot: { ...disk.snapshot },
  entries: [...disk.entries],
  applied: disk.applied,
  conf: disk.conf,
  appliedEntries: [...disk.appliedEntries],
  readStates: [],
});

interface Restored {
  readonly c: Cluster;
  /** Index of the entry committed by a and c after c's copy was taken. */
  readonly lost: number;
  /** What a, which committed it, answers a starting peer: its commit index and that entry's term. */
  readonly commit: { readonly index: number; readonly term: number };
}

/**
 * a leads; b is cut off from a, so "x1" commits with a's and c's copies alone. Then c's directory is
 * replaced by a copy from before "x1", and c restarts: only a still holds the committed entry. a
 * restarts too, so no leader holds a progress for c from before: the case the start-up check of the
 * leaders' progress (acknowledged-entries.ts) cannot see, and the one this fence is for.
 */
const restoredAfterForgettingAnEntry = (preVote: boolean): Restored => {
  const c = new Cluster(['a', 'b', 'c'], { preVote });
  expect(c.elect('a')).toBe(true);
  c.propose('a', 'x0');
  const copy = copyOf(c.disk('c'));
  c.cut('a', 'b');
  const lost = c.propose('a', 'x1');
  const status = c.node('a').status();
  expect(status.commit).toBeGreaterThanOrEqual(lost);
  expect(c.appliedValues('a')).toEqual(['x0', 'x1']);
  expect(c.node('b').status().lastIndex).toBeLessThan(lost);
  Object.assign(c.disk('c'), copy);
  c.restart('c');
  c.restart('a');
  expect(c.node('c').status().lastIndex).toBeLessThan(lost);
  return { c, lost, commit: { index: status.commit, term: status.commitTerm } };
};

/** The one leader all replicas follow in the highest term, after ticking until there is one (bounded). */
const settledLeader = (c: Cluster): string => {
  for (let round = 0; round < 200; round++) {
    const leader = c.leader();
    const term = leader === undefined ? -1 : c.node(leader).status().term;
    if (leader !== undefined && c.ids.every((id) => c.node(id).status().term === term)) return leader;
    c.tickAll(1);
  }
  throw new Error('no leader settled in 200 ticks');
};

/** What `id` answers a vote (or pre-vote) request of `from`, whose last entry is (index, logTerm). */
const answer = (c: Cluster, id: string, request: Omit<Message, 'to'>): boolean | undefined => {
  c.node(id).step({ ...request, to: id });
  c.processReady(id);
  const type = request.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
  const answers = c.take(isType(type));
  expect(answers).toHaveLength(1);
  return answers[0]?.reject;
};

/** a goes away; b campaigns until it leads or has tried a few elections. */
const bCampaignsWithoutA = ({ c }: Restored): void => {
  c.heal();
  c.isolate('a');
  for (let attempt = 0; attempt < 3 && c.node('b').status().role !== 'leader'; attempt++) c.elect('b');
};

describe.each([false, true])('the log fence (pre-vote %s)', (preVote) => {
  it('without it, the copy elects a leader that lacks a committed entry (the hazard)', () => {
    const restored = restoredAfterForgettingAnEntry(preVote);
    bCampaignsWithoutA(restored);
    const { c, lost, commit } = restored;
    expect(c.node('b').status().role).toBe('leader');
    expect(c.node('b').termAt(lost)).not.toBe(commit.term);
    // The new leader overwrites the committed "x1": c applies another history than a applied.
    c.propose('b', 'y');
    c.tickAll(1); // followers learn the commit with the next heartbeat
    expect(c.appliedValues('c')).toEqual(['x0', 'y']);
    expect(c.appliedValues('a')).toEqual(['x0', 'x1']);
  });

  it('fenced at the committed entry, the copy refuses that candidate and the entry survives', () => {
    const restored = restoredAfterForgettingAnEntry(preVote);
    const { c, commit } = restored;
    c.node('c').fenceLog(commit.index, commit.term);
    bCampaignsWithoutA(restored);
    expect(c.leaders()).not.toContain('b');
    // a comes back: a leader holding the entry is elected, and every replica applies it.
    c.heal();
    c.propose(settledLeader(c), 'x2');
    c.tickAll(1); // followers learn the commit with the next heartbeat
    for (const id of ['a', 'b', 'c']) expect(c.appliedValues(id).slice(-3), id).toEqual(['x0', 'x1', 'x2']);
  });

  it('a fenced replica still votes for a candidate that holds the entry, and only for one', () => {
    const { c, lost, commit } = restoredAfterForgettingAnEntry(preVote);
    c.node('c').fenceLog(commit.index, commit.term);
    // A lower fence learned from another peer does not lower it.
    c.node('c').fenceLog(1, commit.term);
    const type = preVote ? MessageType.PreVote : MessageType.Vote;
    const term = c.node('c').status().term + 1;
    // b's log ends before the entry; a's holds it, as does any log with a later last term.
    expect(answer(c, 'c', { type, from: 'b', term, index: lost - 1, logTerm: commit.term })).toBe(true);
    expect(answer(c, 'c', { type, from: 'b', term, index: lost + 5, logTerm: commit.term - 1 })).toBe(true);
    expect(answer(c, 'c', { type, from: 'a', term, index: lost, logTerm: commit.term })).toBe(false);
    expect(answer(c, 'c', { type, from: 'a', term: term + 1, index: 1, logTerm: commit.term + 1 })).toBe(
      false,
    );
  });
});
