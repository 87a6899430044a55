// Proves the host survives losing its leader and catches up lagging replicas: an isolated leader is
// replaced and its unacknowledged proposal never succeeds, a follower that missed a compacted stretch of
// the log is caught up by a streamed snapshot, and a node added through a membership change is created
// from nothing (acceptUnknownGroup) and filled by a snapshot. Everything runs over the in-memory network.

import { describe, expect, it } from 'vitest';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 2;
const IDS = ['a', 'b', 'c'];

const startCluster = async (
  options: Partial<ConstructorParameters<typeof Cluster>[0]> = {},
): Promise<Cluster> => {
  const cluster = new Cluster({ ids: IDS, ...options });
  await cluster.start();
  for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
  return cluster;
};

const sameApplied = async (
  cluster: Cluster,
  ids: readonly string[],
  expected: string[],
): Promise<boolean> => {
  const logs = await Promise.all(ids.map((id) => appliedData(cluster.host(id).groupKv(GROUP))));
  return logs.every((log) => log.join() === expected.join());
};

describe('RaftHost failover and catch-up', () => {
  it('elects a new leader when the leader is isolated; the old leader never acknowledges its stranded write', async () => {
    const cluster = await startCluster();
    const oldLeader = await cluster.waitForLeader(GROUP);
    expect((await cluster.drive(cluster.host(oldLeader).propose(GROUP, bytes('one')))).ok).toBe(true);

    cluster.network.isolate(oldLeader);
    const stranded = cluster.host(oldLeader).propose(GROUP, bytes('stranded'), { timeoutMs: 100_000 });
    const others = IDS.filter((id) => id !== oldLeader);
    await cluster.runUntil(
      () => others.some((id) => cluster.host(id).status(GROUP)?.role === 'leader'),
      500,
      'a new leader among the others',
    );
    const newLeader = others.find((id) => cluster.host(id).status(GROUP)?.role === 'leader') as string;
    expect((await cluster.drive(cluster.host(newLeader).propose(GROUP, bytes('two')))).ok).toBe(true);

    cluster.network.heal();
    const outcome = await cluster.drive(stranded);
    expect(outcome).toMatchObject({ ok: false, code: 'DROPPED' });
    await cluster.runUntil(() => sameApplied(cluster, IDS, ['one', 'two']), 300, 'convergence');
  });

  it('compacts a log of large entries by its bytes, with no snapshot for followers keeping up', async () => {
    // The count limit alone (1,000 entries) would keep all 40 entries of 16 KiB in memory.
    const entryBytes = 16 * 1024;
    const retainBytes = 64 * 1024;
    const cluster = await startCluster({ limits: { logRetainEntries: 1_000, logRetainBytes: retainBytes } });
    const leader = await cluster.waitForLeader(GROUP);
    const values = Array.from({ length: 40 }, (_, i) => `v${i}:`.padEnd(entryBytes, '.'));
    for (const value of values) {
      expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes(value)))).ok).toBe(true);
    }
    await cluster.runUntil(() => sameApplied(cluster, IDS, values), 300, 'every replica applied');
    const retained = (id: string): number => {
      const status = cluster.host(id).status(GROUP);
      return status === undefined ? Infinity : status.lastIndex - status.firstIndex + 1;
    };
    await cluster.runUntil(
      () => IDS.every((id) => retained(id) <= retainBytes / entryBytes + 1),
      300,
      'every log compacted to its byte budget',
    );
    for (const id of IDS) expect(cluster.host(id).stats().snapshotsSent).toBe(0);
  });

  it('catches up a lagging follower with a snapshot once the leader compacted its log', async () => {
    const cluster = await startCluster({ limits: { logRetainEntries: 10 } });
    const leader = await cluster.waitForLeader(GROUP);
    const lagging = IDS.find((id) => id !== leader) as string;
    cluster.network.isolate(lagging);
    // Isolation cuts both ways; re-link the leader and the third node.
    cluster.network.heal();
    cluster.crash(lagging);

    const values = Array.from({ length: 40 }, (_, i) => `v${i}`);
    for (const value of values) {
      expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes(value)))).ok).toBe(true);
    }
    await cluster.runUntil(() => cluster.host(leader).stats().compactions > 0, 100, 'a compaction');
    expect(cluster.host(leader).status(GROUP)?.firstIndex).toBeGreaterThan(2);

    const reopened = await cluster.open(lagging);
    await cluster.runUntil(() => sameApplied(cluster, IDS, values), 500, 'lagging follower caught up');
    expect(reopened.stats().snapshotsReceived).toBe(1);
    expect(cluster.node(lagging).stateMachine.restoredCalls.map(([group]) => group)).toEqual([GROUP]);
    expect(cluster.host(leader).stats().snapshotsSent).toBeGreaterThanOrEqual(1);
    // New writes after the snapshot replicate normally.
    expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes('after')))).ok).toBe(true);
    await cluster.runUntil(() => sameApplied(cluster, IDS, [...values, 'after']), 300, 'post-snapshot write');
  });

  it('adds a learner created from nothing, fills it by snapshot and promotes it', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes('early')))).ok).toBe(true);
    const newcomer = await cluster.open('d', ['d']);
    expect(newcomer.groups()).toEqual([]);

    const added = await cluster.drive(
      cluster.host(leader).changeMembership(GROUP, { type: 'add_learner', node: 'd' }),
    );
    expect(added).toMatchObject({ ok: true, result: { voters: IDS, learners: ['d'] } });
    await cluster.runUntil(() => sameApplied(cluster, [...IDS, 'd'], ['early']), 300, 'learner filled');
    expect(newcomer.status(GROUP)?.conf.learners).toEqual(['d']);

    const promoted = await cluster.drive(
      cluster.host(leader).changeMembership(GROUP, { type: 'promote', node: 'd' }),
    );
    expect(promoted).toMatchObject({ ok: true, result: { voters: [...IDS, 'd'], learners: [] } });
    expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes('late')))).ok).toBe(true);
    await cluster.runUntil(
      () => sameApplied(cluster, [...IDS, 'd'], ['early', 'late']),
      300,
      'four replicas',
    );
  });

  it('transfers leadership on request', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    const target = IDS.find((id) => id !== leader) as string;
    cluster.host(leader).transferLeader(GROUP, target);
    await cluster.runUntil(() => cluster.leaderOf(GROUP) === target, 300, 'leadership moved');
    expect((await cluster.drive(cluster.host(target).propose(GROUP, bytes('t')))).ok).toBe(true);
  });
});
