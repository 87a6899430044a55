// The replica mover's round against a fake host: it looks only at the groups this node leads (one
// status each per round), starts at most `movesMax` moves, one step per group, and never proposes
// again for a group whose change is still in flight.
import { describe, expect, it } from 'vitest';

import type { GroupStatus, ProposeOutcome } from '../../raft/api.js';
import type { ConfChange, ConfState, GroupId, NodeId } from '../../raft/core/types.js';
import type { ClusterMember } from '../../src/cluster/membership/membership.js';
import {
  SETTLED_RECHECK_MS,
  createReplicaMover,
  desiredFor,
} from '../../src/cluster/placement/replica-mover.js';

const metaGroup = 256;
const member = (nodeId: NodeId): ClusterMember => ({
  nodeId,
  host: '127.0.0.1',
  httpPort: 1,
  raftPort: 2,
  state: 'active',
});
const quietLogger = { info: () => undefined, warn: () => undefined };

interface FakeGroup {
  readonly leader: NodeId;
  readonly conf: ConfState;
}

/** A host whose groups never change; records what the mover asked of it. */
const fakeHost = (groups: ReadonlyMap<GroupId, FakeGroup>) => {
  const statusCalls: GroupId[] = [];
  const proposals: { group: GroupId; change: ConfChange }[] = [];
  const status = (group: GroupId): GroupStatus | undefined => {
    statusCalls.push(group);
    const found = groups.get(group);
    if (found === undefined) return undefined;
    const isLeader = found.leader === 'a';
    const progress = Object.fromEntries(
      [...found.conf.voters, ...found.conf.learners].map((node) => [
        node,
        { match: 10, next: 11, state: 'replicate' as const, recentActive: true },
      ]),
    );
    return {
      group,
      id: 'a',
      term: 2,
      vote: null,
      role: isLeader ? 'leader' : 'follower',
      leader: found.leader,
      commit: 10,
      commitTerm: 2,
      applied: 10,
      firstIndex: 1,
      lastIndex: 10,
      conf: found.conf,
      leadTransferee: null,
      ...(isLeader ? { progress } : {}),
    };
  };
  const host = {
    groups: () => [...groups.keys()],
    leaderOf: (group: GroupId) => groups.get(group)?.leader ?? null,
    status,
    // Never settles: every proposal stays in flight for the whole test.
    changeMembership: (group: GroupId, change: ConfChange): Promise<ProposeOutcome<ConfState>> => {
      proposals.push({ group, change });
      return new Promise(() => undefined);
    },
    transferLeader: () => undefined,
  };
  return { host, statusCalls, proposals };
};

describe('replica mover round', () => {
  const members = ['a', 'b', 'c', 'd'].map(member);
  // Every group sits on a, b, c; with d active, placement moves some of them.
  const groups = new Map<GroupId, FakeGroup>();
  for (let group = 0; group < 64; group++) {
    groups.set(group, {
      leader: group % 2 === 0 ? 'a' : 'b',
      conf: { voters: ['a', 'b', 'c'], learners: [] },
    });
  }
  const mover = (host: ReturnType<typeof fakeHost>['host'], movesMax: number) =>
    createReplicaMover({
      nodeId: 'a',
      host,
      metaGroup,
      members: () => members,
      movesMax,
      changeTimeoutMs: 1_000,
      logger: quietLogger,
    });

  it('builds one status per group this node leads, and none for groups led elsewhere', () => {
    const fake = fakeHost(groups);
    mover(fake.host, 64).round();
    const led = [...groups].filter(([, group]) => group.leader === 'a').map(([id]) => id);
    expect([...fake.statusCalls].sort((x, y) => x - y)).toEqual(led);
  });

  it('starts at most movesMax moves, one step per group, each toward placement', () => {
    const fake = fakeHost(groups);
    mover(fake.host, 3).round();
    const moving = [...groups].filter(
      ([id, group]) => group.leader === 'a' && desiredFor(id, metaGroup, members).voters.includes('d'),
    );
    expect(moving.length).toBeGreaterThan(3);
    expect(fake.proposals).toHaveLength(3);
    for (const { group, change } of fake.proposals) {
      expect(groups.get(group)?.leader).toBe('a');
      expect(change).toEqual({ type: 'add_learner', node: 'd' });
    }
    expect(new Set(fake.proposals.map(({ group }) => group)).size).toBe(3);
  });

  it('never proposes again for a group whose change is still in flight', () => {
    const fake = fakeHost(groups);
    const round = mover(fake.host, 3);
    round.round();
    round.round();
    // The in-flight moves count against movesMax: the second round starts nothing new.
    expect(fake.proposals).toHaveLength(3);
    expect(round.pending()).toBe(3);
  });

  it('once every led group is settled, looks again only when members or leadership change, or after a while', () => {
    // Three members, every group on all of them: nothing to move.
    const three = ['a', 'b', 'c'].map(member);
    let current: readonly ClusterMember[] = three;
    const fake = fakeHost(groups);
    let clock = 0;
    const round = createReplicaMover({
      nodeId: 'a',
      host: fake.host,
      metaGroup,
      members: () => current,
      changeTimeoutMs: 1_000,
      logger: quietLogger,
      now: () => clock,
    });
    round.round();
    const perPass = fake.statusCalls.length;
    expect(perPass).toBe(32);
    expect(fake.proposals).toEqual([]);
    // Settled: the next passes within the recheck interval read no status.
    clock += SETTLED_RECHECK_MS - 1;
    round.round();
    expect(fake.statusCalls).toHaveLength(perPass);
    // After the interval, a full pass again.
    clock += 1;
    round.round();
    expect(fake.statusCalls).toHaveLength(2 * perPass);
    // A member joins: the very next pass looks, and starts moves.
    current = members;
    round.round();
    expect(fake.statusCalls).toHaveLength(3 * perPass);
    expect(fake.proposals.length).toBeGreaterThan(0);
    // Moves in flight: never skipped.
    round.round();
    expect(fake.statusCalls.length).toBeGreaterThan(3 * perPass);
  });
});
