// The replica-move step function (reconcile.ts) and the membership apply (membership.ts), without
// processes. Property: from any current voter set to any placement over any member list, taking
// the chosen steps one at a time (learners catching up at once) ends with exactly the wanted voters
// and no learners, never with fewer voters than the group will end with, never with the leader
// removing itself; and a learner that has not caught up, an unknown voter, or a full move budget
// holds the group back. Also: the membership apply, removal progress, and the janitor that deletes
// replicas only once the group's leader has dropped them.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { ConsensusHost } from '../../raft/api.js';
import type { ProgressStatus } from '../../raft/core/types.js';
import type {
  ClusterMember,
  MemberAddress,
  MembershipCommand,
} from '../../src/cluster/membership/membership.js';
import {
  applyMembership,
  decodeMembers,
  decodeMembershipCommand,
  encodeMembers,
  encodeMembershipCommand,
  namesIncarnation,
} from '../../src/cluster/membership/membership.js';
import { MembershipStateMachine } from '../../src/cluster/membership/membership-state-machine.js';
import { votersFor } from '../../src/cluster/placement/placement.js';
import type { ReconcileInput } from '../../src/cluster/placement/reconcile.js';
import { nextStep } from '../../src/cluster/placement/reconcile.js';
import { removalProgress } from '../../src/cluster/membership/removal-progress.js';
import { createReplicaJanitor } from '../../src/cluster/placement/replica-janitor.js';

const NODES = ['a', 'b', 'c', 'd', 'e', 'f'];

const caughtUp = (commit: number): ProgressStatus => ({
  match: commit,
  next: commit + 1,
  state: 'replicate',
  recentActive: true,
});

interface Group {
  voters: string[];
  learners: string[];
  leader: string;
}

const statusOf = (
  group: Group,
  commit: number,
  lagging: ReadonlySet<string> = new Set(),
): ReconcileInput['status'] => ({
  role: 'leader',
  conf: { voters: group.voters, learners: group.learners },
  commit,
  leadTransferee: null,
  progress: Object.fromEntries(
    [...group.voters, ...group.learners].map((node) => [
      node,
      lagging.has(node) ? { ...caughtUp(commit), match: commit - 5 } : caughtUp(commit),
    ]),
  ),
});

describe('nextStep', () => {
  it('moves any voter set to any placement safely, one change at a time', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(NODES, { minLength: 3, maxLength: 3 }),
        fc.shuffledSubarray(NODES, { minLength: 3, maxLength: 6 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: 2 }),
        (initial, active, groupId, leaderIndex) => {
          const desired = votersFor(groupId, active);
          const group: Group = { voters: [...initial], learners: [], leader: initial[leaderIndex] ?? 'a' };
          const known = new Set(NODES);
          const floor = Math.min(initial.length, desired.length);
          for (let step = 0; step < 40; step += 1) {
            const decision = nextStep({
              self: group.leader,
              status: statusOf(group, 100),
              desired: { voters: desired, learners: [] },
              known,
              mayStartMove: true,
            });
            if (decision.kind === 'settled') {
              expect([...group.voters].sort()).toEqual(desired);
              expect(group.learners).toEqual([]);
              return;
            }
            if (decision.kind === 'waiting') throw new Error(`stuck: ${decision.why}`);
            switch (decision.kind) {
              case 'add_learner':
                expect(group.voters).not.toContain(decision.node);
                group.learners.push(decision.node);
                break;
              case 'promote':
                group.learners = group.learners.filter((node) => node !== decision.node);
                group.voters.push(decision.node);
                break;
              case 'remove':
                expect(decision.node).not.toBe(group.leader);
                group.voters = group.voters.filter((node) => node !== decision.node);
                group.learners = group.learners.filter((node) => node !== decision.node);
                break;
              case 'transfer':
                expect(group.voters).toContain(decision.to);
                expect(desired).toContain(decision.to);
                group.leader = decision.to;
                break;
            }
            expect(group.voters.length).toBeGreaterThanOrEqual(floor);
          }
          throw new Error('did not settle within 40 steps');
        },
      ),
    );
  });

  const base = (): ReconcileInput => ({
    self: 'a',
    status: statusOf({ voters: ['a', 'b', 'c'], learners: ['d'], leader: 'a' }, 100, new Set(['d'])),
    desired: { voters: ['a', 'b', 'd'], learners: [] },
    known: new Set(['a', 'b', 'c', 'd']),
    mayStartMove: true,
  });

  it('waits for a learner to catch up before promoting it, and never removes first', () => {
    expect(nextStep(base())).toMatchObject({ kind: 'waiting' });
    const ready = {
      ...base(),
      status: statusOf({ voters: ['a', 'b', 'c'], learners: ['d'], leader: 'a' }, 100),
    };
    expect(nextStep(ready)).toEqual({ kind: 'promote', node: 'd' });
  });

  it('does nothing while a voter is missing from the member list (it is stale or still filling)', () => {
    expect(nextStep({ ...base(), known: new Set(['a', 'b', 'd']) })).toMatchObject({ kind: 'waiting' });
  });

  it('does not start a move beyond the budget, but removes unwanted learners regardless', () => {
    const settled = statusOf({ voters: ['a', 'b', 'c'], learners: [], leader: 'a' }, 100);
    expect(nextStep({ ...base(), status: settled, mayStartMove: false })).toMatchObject({ kind: 'waiting' });
    expect(nextStep({ ...base(), status: settled })).toEqual({ kind: 'add_learner', node: 'd' });
    const stray = statusOf({ voters: ['a', 'b', 'c'], learners: ['x'], leader: 'a' }, 100);
    expect(
      nextStep({ ...base(), status: stray, known: new Set(['a', 'b', 'c']), mayStartMove: false }),
    ).toEqual({
      kind: 'remove',
      node: 'x',
    });
  });

  it('hands leadership to a caught-up wanted voter before the leader leaves', () => {
    const status = statusOf({ voters: ['a', 'b', 'c', 'd'], learners: [], leader: 'a' }, 100);
    const decision = nextStep({ ...base(), desired: { voters: ['b', 'c', 'd'], learners: [] }, status });
    expect(decision.kind).toBe('transfer');
    expect(nextStep({ ...base(), status: { ...status, role: 'follower' } })).toMatchObject({
      kind: 'waiting',
    });
  });

  it('keeps wanted learners (the meta group on every other member)', () => {
    const status = statusOf({ voters: ['a', 'b', 'c'], learners: [], leader: 'a' }, 100);
    expect(
      nextStep({
        ...base(),
        status,
        desired: { voters: ['a', 'b', 'c'], learners: ['d'] },
        mayStartMove: false,
      }),
    ).toEqual({ kind: 'add_learner', node: 'd' });
  });
});

const address = (nodeId: string, host = '127.0.0.1'): MemberAddress => ({
  nodeId,
  host,
  httpPort: 1000,
  raftPort: 2000,
});
const join = (nodeId: string, host?: string): MembershipCommand => ({
  type: 'join',
  member: address(nodeId, host),
});

describe('membership apply', () => {
  it('joins, drains and removes nodes; a removed node cannot come back under its id', () => {
    let members: readonly ClusterMember[] = [];
    for (const id of ['c', 'a', 'b', 'd']) members = applyMembership(members, join(id), 3).members;
    expect(members.map((m) => m.nodeId)).toEqual(['a', 'b', 'c', 'd']);
    // A second join updates the address and keeps the state.
    const moved = applyMembership(members, join('a', '10.0.0.9'), 3);
    expect(moved.members.find((m) => m.nodeId === 'a')).toMatchObject({ host: '10.0.0.9', state: 'active' });

    expect(applyMembership(members, { type: 'forget', nodeId: 'a' }, 3).outcome.ok).toBe(false);
    const leaving = applyMembership(members, { type: 'leave', nodeId: 'a' }, 3);
    expect(leaving.outcome.ok).toBe(true);
    // Four active minus one is three: a second leave would leave two.
    const second = applyMembership(leaving.members, { type: 'leave', nodeId: 'b' }, 3);
    expect(second.outcome).toMatchObject({ ok: false });
    expect(second.members).toBe(leaving.members);
    const removed = applyMembership(leaving.members, { type: 'forget', nodeId: 'a' }, 3);
    expect(removed.members.find((m) => m.nodeId === 'a')?.state).toBe('removed');
    expect(applyMembership(removed.members, join('a'), 3).outcome.ok).toBe(false);
    expect(applyMembership(removed.members, { type: 'leave', nodeId: 'zz' }, 3).outcome.ok).toBe(false);
  });

  it('lets a name come back only as a new incarnation, and only once the old one is removed', () => {
    const joinAs = (nodeId: string, incarnation: string): MembershipCommand => ({
      type: 'join',
      member: { ...address(nodeId), incarnation },
    });
    let members: readonly ClusterMember[] = [];
    for (const id of ['a', 'b', 'c', 'd'])
      members = applyMembership(members, joinAs(id, `${id}-1`), 3).members;
    // A restart (same data directory) may move: the address is updated, the incarnation kept.
    const moved = applyMembership(
      members,
      { type: 'join', member: { ...address('a', '10.0.0.9'), incarnation: 'a-1' } },
      3,
    );
    expect(moved.outcome.ok).toBe(true);
    expect(moved.members.find((m) => m.nodeId === 'a')).toMatchObject({
      host: '10.0.0.9',
      incarnation: 'a-1',
    });
    // A replaced data directory under a member's name is refused, and nothing changes.
    const replaced = applyMembership(members, joinAs('a', 'a-2'), 3);
    expect(replaced.outcome).toMatchObject({ ok: false });
    expect(replaced.outcome.ok === false && replaced.outcome.reason).toContain('fastpaca cluster remove a');
    expect(replaced.members).toBe(members);
    // Once removed: the old directory stays refused, a new one joins as a fresh active member.
    const left = applyMembership(members, { type: 'leave', nodeId: 'a' }, 3).members;
    expect(applyMembership(left, joinAs('a', 'a-2'), 3).outcome.ok).toBe(false);
    const removed = applyMembership(left, { type: 'forget', nodeId: 'a' }, 3).members;
    expect(applyMembership(removed, joinAs('a', 'a-1'), 3).outcome).toMatchObject({ ok: false });
    // Not before the meta group's leader reports the old one gone from the meta group too.
    const early = applyMembership(removed, joinAs('a', 'a-2'), 3);
    expect(early.outcome.ok === false && early.outcome.reason).toContain('still being dropped');
    expect(applyMembership(members, { type: 'purge', nodeId: 'a' }, 3).outcome.ok).toBe(false);
    const purged = applyMembership(removed, { type: 'purge', nodeId: 'a' }, 3).members;
    expect(purged.find((m) => m.nodeId === 'a')).toMatchObject({ state: 'removed', purged: true });
    expect(decodeMembers(encodeMembers(purged))).toEqual(purged);
    expect(applyMembership(purged, joinAs('a', 'a-1'), 3).outcome.ok).toBe(false);
    const back = applyMembership(purged, joinAs('a', 'a-2'), 3);
    expect(back.outcome.ok).toBe(true);
    expect(back.members.find((m) => m.nodeId === 'a')).toEqual({
      ...address('a'),
      incarnation: 'a-2',
      state: 'active',
    });
    // A member recorded before incarnations existed takes the first one it reports.
    const legacy = applyMembership([], join('e'), 3).members;
    const adopted = applyMembership(legacy, joinAs('e', 'e-1'), 3);
    expect(adopted.members.find((m) => m.nodeId === 'e')?.incarnation).toBe('e-1');
    // Lists and commands keep the incarnation through encoding.
    expect(decodeMembers(encodeMembers(back.members))).toEqual(back.members);
    expect(decodeMembershipCommand(encodeMembershipCommand(joinAs('a', 'a-2')))).toEqual(joinAs('a', 'a-2'));
    expect(namesIncarnation(back.members, 'a', 'a-2')).toBe(true);
    expect(namesIncarnation(back.members, 'a', 'a-1')).toBe(false);
    expect(namesIncarnation(removed, 'a', 'a-1')).toBe(false);
    expect(namesIncarnation(legacy, 'e', 'anything')).toBe(false);
    expect(namesIncarnation(adopted.members, 'e', 'e-1')).toBe(true);
  });

  it('round-trips commands and lists, and refuses bytes that are not a command', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...NODES),
        fc.constantFrom('leave', 'forget', 'purge', 'join'),
        (id, type) => {
          const command: MembershipCommand = type === 'join' ? join(id) : { type, nodeId: id };
          expect(decodeMembershipCommand(encodeMembershipCommand(command))).toEqual(command);
        },
      ),
    );
    expect(() => decodeMembershipCommand(new TextEncoder().encode('{"type":"join"}'))).toThrow();
    const members = applyMembership([], join('a'), 3).members;
    expect(decodeMembers(encodeMembers(members))).toEqual(members);
  });

  it('applies identically on every replica, answering refused changes without applying them', async () => {
    const replicas = [new MembershipStateMachine(3), new MembershipStateMachine(3)];
    const entries = [
      join('a'),
      join('b'),
      join('c'),
      { type: 'leave', nodeId: 'a' } as MembershipCommand,
    ].map((command, i) => ({ index: i + 1, term: 1, data: encodeMembershipCommand(command) }));
    const writes: string[] = [];
    const results = await Promise.all(
      replicas.map((replica) =>
        replica.apply(
          entries,
          { put: (_key, value) => writes.push(new TextDecoder().decode(value)), del: () => undefined },
          { get: () => Promise.resolve(undefined), iterate: async function* () {} },
        ),
      ),
    );
    expect(results[0]).toEqual(results[1]);
    // Three active nodes: the leave is refused.
    expect(results[0]?.[3]).toMatchObject({ error: 'conflict' });
    expect(replicas[0]?.members()).toEqual(replicas[1]?.members());
    expect(writes[0]).toBe(writes[1]);
  });
});

describe('removal progress', () => {
  it('trusts only leaders, and counts leaderless groups as unknown', () => {
    const view = (group: number, leader: string | null, voters: string[], term = 1) => ({
      group,
      leader,
      voters,
      learners: [],
      term,
    });
    const progress = removalProgress(
      [
        // b's stale view of group 0 still lists x; the leader a does not.
        { node_id: 'a', groups: [view(0, 'a', ['a', 'b', 'c']), view(1, null, ['a', 'x', 'c'])] },
        { node_id: 'b', groups: [view(0, 'a', ['a', 'b', 'x']), view(2, 'b', ['b', 'x', 'c'])] },
      ],
      'x',
    );
    expect(progress).toEqual({ hosting: [2], unknown: [1], metaHosting: undefined });
  });
});

describe('replica janitor', () => {
  it('deletes a replica only once its leader no longer counts this node and placement agrees', async () => {
    const view = (group: number, leader: string | null, voters: string[], term = 2) => ({
      group,
      leader,
      voters,
      learners: [],
      term,
    });
    const roles = new Map<number, 'leader' | 'follower'>([
      [0, 'follower'],
      [1, 'follower'],
      [2, 'follower'],
      [3, 'leader'],
      [4, 'follower'],
      [5, 'follower'],
    ]);
    // Group 5's replica here has seen term 3: a term-2 leader that does not count it was deposed
    // (it may not know the group moved back here), so its word does not count.
    const localTerms = new Map<number, number>([[5, 3]]);
    const forgotten: number[] = [];
    const janitor = createReplicaJanitor({
      nodeId: 'x',
      host: {
        groups: () => [...roles.keys()],
        status: (group) =>
          ({
            role: roles.get(group) ?? 'follower',
            term: localTerms.get(group) ?? 2,
          }) as unknown as ReturnType<ConsensusHost['status']>,
      },
      // Group 4 is still placed here.
      placedElsewhere: (group) => group !== 4,
      peerHttpAddresses: () => ['a', 'b'],
      forget: (group) => {
        forgotten.push(group);
        return Promise.resolve(true);
      },
      clusterSecret: undefined,
      logger: { info: () => undefined, warn: () => undefined },
      fetchStatus: (address) =>
        address === 'a'
          ? Promise.resolve({
              node_id: 'a',
              groups: [
                view(0, 'a', ['a', 'b', 'c']),
                // Still counted as a voter by its leader: never forgotten, whatever placement says.
                view(1, 'a', ['a', 'b', 'x']),
                view(3, 'a', ['a', 'b', 'c']),
                view(4, 'a', ['a', 'b', 'c']),
                view(5, 'a', ['a', 'b', 'c']),
              ],
            })
          : // b's view of group 2 is a follower's (stale): no authority, so group 2 is kept.
            Promise.resolve({
              node_id: 'b',
              groups: [view(2, 'a', ['a', 'b', 'c']), view(0, 'b', ['b', 'x'], 1)],
            }),
    });
    expect(await janitor.round()).toEqual([0]);
    expect(forgotten).toEqual([0]);
  });
});
