// The start-up vote fence (RawNode.fenceVotes): a replica restored from a copy of its directory may
// have forgotten a vote it cast after the copy was taken. Granting another vote in that term could
// elect two leaders in one term; fenced at the highest term its peers hold, it votes again only in
// a later term. Shown on real RawNodes: the unfenced copy does double-vote (so the test can fail),
// the fenced one refuses, the fence is persisted like any vote, and a vote the directory still holds
// is kept.

import { describe, expect, it } from 'vitest';

import { VOTE_FENCED } from '../../../raft/core/raw-node.js';
import { MessageType, type Message } from '../../../raft/core/types.js';
import { Cluster, isType } from './cluster.js';

const voteRequest = (from: string, to: string, term: number): Message => ({
  type: MessageType.Vote,
  from,
  to,
  term,
  index: 0,
  logTerm: 0,
});

/** The answers `id` gives to the vote requests stepped into it since the last call. */
const answersOf = (c: Cluster, id: string): [string, number, boolean | undefined][] => {
  c.processReady(id);
  return c.take(isType(MessageType.VoteResp)).map((m) => [m.to, m.term, m.reject]);
};

/** Node c votes for a in term 2, then its directory is replaced by a copy from before that vote. */
const restoredAfterForgettingItsVote = (): Cluster => {
  const c = new Cluster(['a', 'b', 'c']);
  const before = { ...c.disk('c').hardState };
  c.node('c').step(voteRequest('a', 'c', 2));
  expect(answersOf(c, 'c')).toEqual([['a', 2, false]]);
  expect(c.disk('c').hardState).toMatchObject({ term: 2, vote: 'a' });
  c.disk('c').hardState = before;
  c.restart('c');
  return c;
};

describe('the vote fence', () => {
  it('without it, a copy that forgot its vote grants a second one in the same term (the hazard)', () => {
    const c = restoredAfterForgettingItsVote();
    c.node('c').step(voteRequest('b', 'c', 2));
    expect(answersOf(c, 'c')).toEqual([['b', 2, false]]);
  });

  it('fenced at the peers’ term, the copy refuses that term and votes again only in a later one', () => {
    const c = restoredAfterForgettingItsVote();
    c.node('c').fenceVotes(2);
    c.node('c').step(voteRequest('b', 'c', 2));
    expect(answersOf(c, 'c')).toEqual([['b', 2, true]]);
    // Persisted like a vote, so a crash right after keeps the fence.
    expect(c.disk('c').hardState).toMatchObject({ term: 2, vote: VOTE_FENCED });
    c.restart('c');
    c.node('c').step(voteRequest('b', 'c', 2));
    expect(answersOf(c, 'c')).toEqual([['b', 2, true]]);
    // A later term is one its forgotten vote cannot have been cast in.
    c.node('c').step(voteRequest('b', 'c', 3));
    expect(answersOf(c, 'c')).toEqual([['b', 3, false]]);
    expect(c.node('c').status().vote).toBe('b');
  });

  it('keeps a vote the directory still holds for the fence’s term, and ignores a fence below its term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.node('c').step(voteRequest('a', 'c', 2));
    answersOf(c, 'c');
    c.node('c').fenceVotes(2);
    c.node('c').fenceVotes(1);
    expect(c.node('c').status().vote).toBe('a');
    expect(c.node('c').status().term).toBe(2);
    c.node('c').step(voteRequest('a', 'c', 2));
    c.node('c').step(voteRequest('b', 'c', 2));
    expect(answersOf(c, 'c')).toEqual([
      ['a', 2, false],
      ['b', 2, true],
    ]);
  });

  it('a fenced follower still follows the leader of the fence’s term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    c.restart('c');
    c.node('c').fenceVotes(term);
    c.propose('a', 'x');
    c.stabilize();
    c.tickAll(1);
    c.stabilize();
    expect(c.appliedValues('c')).toEqual(['x']);
    expect(c.node('c').status().term).toBe(term);
    expect(c.leaders()).toEqual(['a']);
  });
});
