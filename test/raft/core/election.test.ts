// Leader election, rule by rule (Raft paper §5.2 and §5.4.1, thesis §6.2 and §9.6), on real RawNodes in
// the in-process Cluster: one leader that replicates, randomized timeouts that converge, one vote per
// term, the election restriction, pre-vote keeping a returning node from deposing a healthy leader, and
// check-quorum stepping down a leader that lost its majority.

import { describe, expect, it } from 'vitest';
import { MessageType, type Message } from '../../../raft/core/types.js';
import { Cluster, isType } from './cluster.js';

const voteRequest = (from: string, to: string, term: number, index: number, logTerm: number): Message => ({
  type: MessageType.Vote,
  from,
  to,
  term,
  index,
  logTerm,
});

describe('leader election (Raft §5.2, §5.4.1)', () => {
  it('§5.2: a candidate with votes from a majority becomes leader and replicates', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    c.propose('a', 'y');
    expect(c.appliedValues('a')).toEqual(['x', 'y']);
    // A commit alone sends nothing: followers learn it from the next heartbeat.
    c.tickAll(1);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
    // Heartbeats keep followers from timing out: the leader stays.
    c.tickAll(30);
    expect(c.leader()).toBe('a');
    expect(c.leaders()).toEqual(['a']);
  });

  it('§5.2: randomized election timeouts elect exactly one leader from ticks alone (pre-vote, check-quorum)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true, seed });
      c.tickAll(25);
      expect(c.leaders(), `seed ${seed}`).toHaveLength(1);
      const leader = c.leader() as string;
      c.propose(leader, 'x');
      expect(c.appliedValues(leader), `seed ${seed}`).toEqual(['x']);
      // A commit alone sends nothing: followers learn it from the next heartbeat.
      c.tickAll(1);
      for (const id of c.ids) expect(c.appliedValues(id), `seed ${seed}`).toEqual(['x']);
    }
  });

  it('§5.2: a node grants at most one vote per term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    const node = c.node('c');
    node.step(voteRequest('a', 'c', 2, 0, 0));
    node.step(voteRequest('b', 'c', 2, 0, 0));
    c.processReady('c');
    const answers = c.take(isType(MessageType.VoteResp));
    expect(answers.map((m) => [m.to, m.reject])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    expect(node.status().vote).toBe('a');
    // The vote is durable: it is in the hard state the Ready asked to persist before answering.
    expect(c.disk('c').hardState).toMatchObject({ term: 2, vote: 'a' });
  });

  it('§5.4.1: a candidate whose log is less up-to-date than a majority cannot win', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.isolate('c');
    c.propose('a', 'x');
    c.heal();
    // c missed x; a and b refuse it their votes even in a higher term.
    c.filter = (m) => m.type !== MessageType.App && m.type !== MessageType.Heartbeat;
    c.node('c').campaign();
    c.stabilize();
    expect(c.node('c').status().role).not.toBe('leader');
    const refusals = c.sent.filter((m) => m.type === MessageType.VoteResp && m.to === 'c');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((m) => m.reject === true)).toBe(true);
    // The committed entry survives: whoever leads next holds it.
    c.heal();
    c.tickAll(40);
    const leader = c.leader() as string;
    expect(c.node(leader).termAt(c.node('a').status().commit)).toBeDefined();
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x']);
  });

  it('thesis §9.6: with pre-vote, a node returning from a partition does not depose a healthy leader', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    c.isolate('c');
    // Long enough for c's election timer to fire many times: pre-votes fail, its term stays.
    c.tickAll(60);
    expect(c.node('c').status().term).toBe(term);
    c.heal();
    c.tickAll(30);
    expect(c.leader()).toBe('a');
    expect(c.node('a').status().term).toBe(term);
  });

  it('thesis §9.6: two pre-candidates polling each other at once elect one leader in one round (no split vote)', () => {
    for (const [first, second] of [
      ['b', 'c'],
      ['c', 'b'],
    ] as const) {
      const c = new Cluster(['a', 'b', 'c'], { preVote: true });
      expect(c.elect('a')).toBe(true);
      const term = c.node('a').status().term;
      // The leader dies; both survivors' timers fire before either hears the other's pre-vote.
      c.isolate('a');
      c.node(first).campaign();
      c.node(second).campaign();
      c.stabilize();
      // Equal logs: the lower id wins both pre-votes, the other votes for it in the same term.
      expect(c.node('b').status().role).toBe('leader');
      expect(c.node('b').status().term).toBe(term + 1);
      expect(c.node('c').status()).toMatchObject({ role: 'follower', term: term + 1, leader: 'b' });
    }
  });

  it('thesis §9.6: between two pre-candidates the more up-to-date log wins, whatever the ids', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true });
    expect(c.elect('a')).toBe(true);
    // c holds an entry b missed.
    c.filter = (m) => !(m.type === MessageType.App && m.to === 'b');
    c.propose('a', 'x');
    c.heal();
    const term = c.node('a').status().term;
    c.isolate('a');
    c.node('b').campaign();
    c.node('c').campaign();
    c.stabilize();
    expect(c.node('c').status()).toMatchObject({ role: 'leader', term: term + 1 });
    expect(c.node('b').status()).toMatchObject({ role: 'follower', leader: 'c' });
  });

  it('thesis §6.2: with check-quorum, a leader cut off from its majority steps down', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    c.isolate('a');
    c.tickAll(40);
    // a stepped down (and, with pre-vote, cannot win or raise its term while cut off).
    expect(c.node('a').status().role).not.toBe('leader');
    expect(c.node('a').status().term).toBe(term);
    // The other side elected a leader of its own in a later term.
    const leader = c.leader() as string;
    expect(['b', 'c']).toContain(leader);
    expect(c.node(leader).status().term).toBeGreaterThan(term);
  });
});
