// Placement is what lets nodes that bootstrap independently form one cluster, so it must be a pure
// function of the member set: property tests check that the voters never depend on the order or
// duplication of the member list, that every group gets min(3, n) distinct members, that leaders
// are spread exactly evenly over three nodes, and that with more nodes replicas spread too.
// The leader balancer is checked against a fake host: it hands over only healthy, caught-up replicas.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { ConsensusHost, GroupStatus } from '../../raft/api.js';
import type { ProgressStatus } from '../../raft/core/types.js';
import { createDrainingPeers } from '../../src/cluster/placement/draining-peers.js';
import { balanceLeadersOnce } from '../../src/cluster/placement/leader-balancer.js';
import { handOffLeadership, handoffTarget } from '../../src/cluster/placement/leadership-handoff.js';
import { preferredLeader, votersFor } from '../../src/cluster/placement/placement.js';

const nodeName = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);

describe('placement', () => {
  it('depends only on the member set, and picks min(3, n) distinct members', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(nodeName, { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 0, max: 255 }),
        fc.infiniteStream(fc.integer()),
        (members, group, noise) => {
          const shuffled = [...members, ...members.slice(0, 2)].sort(() =>
            noise.next().value % 2 === 0 ? 1 : -1,
          );
          const voters = votersFor(group, members);
          expect(votersFor(group, shuffled)).toEqual(voters);
          expect(voters).toHaveLength(Math.min(3, members.length));
          expect(new Set(voters).size).toBe(voters.length);
          for (const voter of voters) expect(members).toContain(voter);
          expect(voters).toEqual([...voters].sort());
        },
      ),
    );
  });

  it('spreads preferred leaders exactly evenly over three nodes', () => {
    const counts = new Map<string, number>();
    for (let group = 0; group < 256; group += 1) {
      const leader = preferredLeader(group, votersFor(group, ['c', 'a', 'b']));
      if (leader !== undefined) counts.set(leader, (counts.get(leader) ?? 0) + 1);
    }
    expect([...counts.values()].sort()).toEqual([85, 85, 86]);
  });

  it('spreads replicas over more than three nodes', () => {
    const members = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
    const replicas = new Map<string, number>();
    for (let group = 0; group < 256; group += 1) {
      for (const voter of votersFor(group, members)) replicas.set(voter, (replicas.get(voter) ?? 0) + 1);
    }
    const even = (256 * 3) / members.length;
    for (const member of members)
      expect(Math.abs((replicas.get(member) ?? 0) - even)).toBeLessThan(even * 0.3);
  });
});

const progress = (match: number, recentActive: boolean): ProgressStatus => ({
  match,
  next: match + 1,
  state: 'replicate',
  recentActive,
});

const fakeHost = (statuses: GroupStatus[]) => {
  const transfers: [number, string][] = [];
  const host: Pick<ConsensusHost, 'groups' | 'status' | 'transferLeader'> = {
    groups: () => statuses.map((status) => status.group),
    status: (group) => statuses.find((status) => status.group === group),
    transferLeader: (group, to) => transfers.push([group, to]),
  };
  return { host, transfers };
};

const leaderStatus = (group: number, progressOf: Record<string, ProgressStatus>): GroupStatus => ({
  group,
  id: 'a',
  term: 2,
  vote: 'a',
  role: 'leader',
  leader: 'a',
  commit: 100,
  commitTerm: 2,
  applied: 100,
  firstIndex: 1,
  lastIndex: 100,
  conf: { voters: ['a', 'b', 'c'], learners: [] },
  progress: progressOf,
  leadTransferee: null,
});

describe('leader balancer', () => {
  it('hands a group to its preferred leader only when that replica is active and caught up', () => {
    // Group 1 prefers b, group 2 prefers c, group 3 prefers a (this node), group 4 prefers b.
    const { host, transfers } = fakeHost([
      leaderStatus(1, { a: progress(100, true), b: progress(100, true), c: progress(100, true) }),
      leaderStatus(2, { a: progress(100, true), b: progress(100, true), c: progress(100, false) }),
      leaderStatus(3, { a: progress(100, true), b: progress(100, true), c: progress(100, true) }),
      leaderStatus(4, { a: progress(100, true), b: progress(10, true), c: progress(100, true) }),
    ]);
    expect(balanceLeadersOnce(host, 'a', 10)).toBe(1);
    expect(transfers).toEqual([[1, 'b']]);
  });

  it('starts at most the given number of transfers per round', () => {
    const all = { a: progress(100, true), b: progress(100, true), c: progress(100, true) };
    const { host, transfers } = fakeHost([1, 2, 4, 5, 7, 8].map((group) => leaderStatus(group, all)));
    expect(balanceLeadersOnce(host, 'a', 3)).toBe(3);
    expect(transfers).toHaveLength(3);
  });
});

describe('leader balancer and draining peers', () => {
  it('hands no group to a peer that is shutting down, until its mark expires', () => {
    let now = 1_000;
    const draining = createDrainingPeers(() => now);
    const all = { a: progress(100, true), b: progress(100, true), c: progress(100, true) };
    // Group 1 prefers b (see above).
    const { host, transfers } = fakeHost([leaderStatus(1, all)]);
    draining.mark('b', 5_000);
    expect(balanceLeadersOnce(host, 'a', 10, undefined, (node) => draining.isDraining(node))).toBe(0);
    now += 5_001;
    expect(balanceLeadersOnce(host, 'a', 10, undefined, (node) => draining.isDraining(node))).toBe(1);
    expect(transfers).toEqual([[1, 'b']]);
    draining.mark('c', 5_000);
    draining.mark('c', 0);
    expect(draining.isDraining('c')).toBe(false);
  });
});

describe('leadership handoff', () => {
  it('hands each led group to its most caught-up active voter, leaving groups with none', async () => {
    const { host, transfers } = fakeHost([
      leaderStatus(1, { a: progress(100, true), b: progress(90, true), c: progress(100, true) }),
      leaderStatus(2, { a: progress(100, true), b: progress(100, false), c: progress(100, false) }),
      { ...leaderStatus(3, {}), role: 'follower', leader: 'b' },
    ]);
    expect(handoffTarget(host, 1, 'a')).toBe('c');
    expect(handoffTarget(host, 2, 'a')).toBeUndefined();
    expect(handoffTarget(host, 3, 'a')).toBeUndefined();
    const result = await handOffLeadership(host, 'a', 100, 10);
    // The fake never changes leader, so group 1 is asked again each round; group 2 has no target.
    expect(new Set(transfers.map(([group, to]) => `${group}->${to}`))).toEqual(new Set(['1->c']));
    expect(result.stillLed).toEqual([1, 2]);
    expect(result.elapsedMs).toBeGreaterThanOrEqual(100);
  });

  it('returns at once when this node leads nothing it can hand over', async () => {
    const { host } = fakeHost([
      leaderStatus(2, { a: progress(100, true), b: progress(100, false), c: progress(100, false) }),
    ]);
    const result = await handOffLeadership(host, 'a', 10_000, 10);
    expect(result.stillLed).toEqual([2]);
    expect(result.elapsedMs).toBeLessThan(1_000);
  });
});
