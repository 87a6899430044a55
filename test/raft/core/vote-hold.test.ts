// Held votes (RawNode.holdVotes): a node whose start checks no peer answered does not know the fences
// its directory may need (a restored copy may have forgotten votes and entries), so its replicas
// neither vote nor campaign until it could ask. Shown on real RawNodes, with and without pre-vote: a
// held replica refuses vote and pre-vote requests, starts no election on its timeout or on a
// leader's TimeoutNow, still follows and applies; released, it votes and campaigns again. A group
// whose only voter is the replica is never held.

import { describe, expect, it } from 'vitest';

import { MessageType, type Message } from '../../../raft/core/types.js';
import { Cluster, isType } from './cluster.js';

/** Whether `id` granted the vote (or pre-vote) request stepped into it. */
const grants = (c: Cluster, id: string, request: Omit<Message, 'to'>): boolean => {
  c.node(id).step({ ...request, to: id });
  c.processReady(id);
  const type = request.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
  const answers = c.take(isType(type));
  expect(answers).toHaveLength(1);
  return answers[0]?.reject === false;
};

describe.each([false, true])('held votes (pre-vote %s)', (preVote) => {
  it('a held replica refuses votes and starts no election; released, it does both again', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote });
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    c.node('c').holdVotes(true);
    const { term, lastIndex } = c.node('c').status();
    const lastTerm = c.node('c').termAt(lastIndex) ?? 0;
    const request = { from: 'b', term: term + 1, index: lastIndex + 1, logTerm: lastTerm };
    expect(grants(c, 'c', { ...request, type: MessageType.Vote })).toBe(false);
    expect(grants(c, 'c', { ...request, type: MessageType.PreVote })).toBe(false);
    // Its leader gone, it never campaigns: not on its election timeout, not when told to.
    c.isolate('a');
    c.isolate('b');
    c.tickAll(50);
    c.node('c').step({ type: MessageType.TimeoutNow, from: 'a', to: 'c', term: c.node('c').status().term });
    c.stabilize();
    expect(c.node('c').status().role).toBe('follower');
    expect(c.take(() => true).filter((m) => m.from === 'c')).toEqual([]);
    // Released: it grants the same request in a later term, and campaigns on its own timeout again.
    c.node('c').holdVotes(false);
    const now = c.node('c').status().term;
    expect(grants(c, 'c', { ...request, term: now + 1, type: MessageType.Vote })).toBe(true);
    c.heal();
    c.isolate('a');
    c.tickAll(50);
    expect(c.leaders()).not.toEqual([]);
    expect(c.leader()).not.toBe('a');
  });

  it('a held replica still follows its leader and applies', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote });
    expect(c.elect('a')).toBe(true);
    c.node('c').holdVotes(true);
    c.propose('a', 'x');
    c.tickAll(1);
    expect(c.appliedValues('c')).toEqual(['x']);
    expect(c.node('c').status().leader).toBe('a');
  });

  it('a group whose only voter is the replica is never held', () => {
    const c = new Cluster(['a'], { preVote });
    c.node('a').holdVotes(true);
    expect(c.elect('a')).toBe(true);
  });
});
