// Heartbeats of a group at rest: once every follower holds the whole log and has been sent the commit
// index, a leader heartbeats every third interval (RawNode.quiet); a group with anything in flight
// keeps the configured interval. Either way no follower campaigns against a live leader, and
// check-quorum still deposes a leader that lost its majority.

import { describe, expect, it } from 'vitest';
import { MessageType, type Message } from '../../../raft/core/types.js';
import { Cluster } from './cluster.js';

const isHeartbeat = (m: Message): boolean => m.type === MessageType.Heartbeat;

/** Heartbeats the cluster sent during `ticks` ticks of every node. */
const heartbeatsOver = (c: Cluster, ticks: number): Message[] => {
  const before = c.sent.length;
  c.tickAll(ticks);
  return c.sent.slice(before).filter(isHeartbeat);
};

describe('heartbeats of a group at rest (quiet leader)', () => {
  it('a fully replicated group heartbeats every third tick, and a new entry brings back every tick', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    // The commit of x travels with the next heartbeat; after it the group is at rest.
    c.tickAll(1);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x']);
    const quiet = heartbeatsOver(c, 12);
    expect(quiet.filter((m) => m.to === 'b')).toHaveLength(4);
    expect(quiet.filter((m) => m.to === 'c')).toHaveLength(4);

    // An entry whose commit the followers have not been sent: back to one heartbeat per tick.
    c.propose('a', 'y');
    const busy = heartbeatsOver(c, 1);
    expect(busy.map((m) => m.to).sort()).toEqual(['b', 'c']);
    expect(busy.every((m) => m.commit === c.node('a').status().commit)).toBe(true);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
    expect(c.leaders()).toEqual(['a']);
  });

  it('a follower that lags keeps its group on the short interval until it has caught up', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    // c misses x's App (and nothing else): it no longer matches the leader's log.
    c.filter = (m) => !(m.type === MessageType.App && m.to === 'c');
    c.propose('a', 'x');
    c.filter = undefined;
    expect(c.node('a').status().progress?.c?.match).toBeLessThan(c.node('a').status().lastIndex);
    // The first heartbeat's answer tells a that c is behind; the App that follows catches c up.
    const beats = heartbeatsOver(c, 1);
    expect(beats.map((m) => m.to).sort()).toEqual(['b', 'c']);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x']);
  });

  it('a quiet leader keeps its followers from campaigning and check-quorum from deposing it', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    const term = c.node('a').status().term;
    const before = c.sent.length;
    // Many election timeouts (10 ticks each, randomized up to 20) at rest.
    c.tickAll(200);
    expect(c.leaders()).toEqual(['a']);
    expect(c.node('a').status().term).toBe(term);
    const campaigns = c.sent
      .slice(before)
      .filter((m) => m.type === MessageType.Vote || m.type === MessageType.PreVote);
    expect(campaigns).toEqual([]);
  });

  it('a quiet leader cut off from its majority still steps down (check-quorum) and a new one is elected', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    c.tickAll(5);
    c.isolate('a');
    c.tickAll(60);
    expect(c.node('a').status().role).not.toBe('leader');
    expect(c.leaders()).toHaveLength(1);
    expect(c.leader()).not.toBe('a');
  });

  it('with a longer configured interval the quiet one is never below it', () => {
    // heartbeatTicks 4, electionTicks 10: three times 4 would leave fewer than three heartbeats per
    // election timeout, so a quiet group keeps 4.
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true, heartbeatTicks: 4 });
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    c.tickAll(4);
    const quiet = heartbeatsOver(c, 12);
    expect(quiet.filter((m) => m.to === 'b')).toHaveLength(3);
    c.tickAll(100);
    expect(c.leaders()).toEqual(['a']);
  });
});
