// A group whose only member is this node commits an entry the moment its own copy is durable. The host
// applies and answers such a proposal in the same turn that persists it (one synced store write, no
// second turn), and an answer given that way survives a crash before any later write.

import { describe, expect, it } from 'vitest';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 9;

const soloCluster = async (): Promise<Cluster> => {
  const cluster = new Cluster({ ids: ['a'] });
  await cluster.start();
  await cluster.host('a').bootstrapGroup(GROUP, ['a']);
  await cluster.waitForLeader(GROUP);
  await cluster.round(false);
  return cluster;
};

describe('RaftHost with a lone-member group', () => {
  it('answers a proposal in the turn that persists it, with one synced write', async () => {
    const cluster = await soloCluster();
    const host = cluster.host('a');
    const before = host.stats();
    let outcome: unknown;
    void host.propose(GROUP, bytes('solo')).then((value) => (outcome = value));
    await host.turn();
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome).toMatchObject({ ok: true });
    expect((outcome as { result: string }).result).toContain(':solo');
    const after = host.stats();
    expect(after.storeWrites - before.storeWrites).toBe(1);
    expect(after.syncedWrites - before.syncedWrites).toBe(1);
    expect(after.entriesApplied - before.entriesApplied).toBe(1);
  });

  it('keeps an entry answered that way across a crash before the next write', async () => {
    const cluster = await soloCluster();
    const host = cluster.host('a');
    const first = await cluster.drive(host.propose(GROUP, bytes('one')));
    expect(first.ok).toBe(true);
    let second: unknown;
    void host.propose(GROUP, bytes('two')).then((value) => (second = value));
    await host.turn();
    await new Promise((resolve) => setImmediate(resolve));
    expect(second).toMatchObject({ ok: true });
    // The carried commit index and the applied record are not written yet: only the log holds 'two'.
    cluster.crash('a');
    await cluster.open('a');
    await cluster.waitForLeader(GROUP);
    await cluster.runUntil(
      async () => (await appliedData(cluster.host('a').groupKv(GROUP))).join() === 'one,two',
      200,
      'both entries applied once after the restart',
    );
    const next = await cluster.drive(cluster.host('a').propose(GROUP, bytes('three')));
    expect(next.ok).toBe(true);
    expect((await appliedData(cluster.host('a').groupKv(GROUP))).join()).toBe('one,two,three');
  });

  it('keeps only a small batch of applied entries in its log, whatever the retention limit', async () => {
    const cluster = await soloCluster();
    const host = cluster.host('a');
    for (let i = 0; i < 300; i += 1) {
      const outcome = await cluster.drive(host.propose(GROUP, bytes(`e${i}`)));
      expect(outcome.ok).toBe(true);
    }
    for (let i = 0; i < 3; i += 1) await cluster.round(false);
    const status = host.status(GROUP);
    // testLimits retain far more than this; a lone member compacts at 64 applied entries.
    expect((status?.lastIndex ?? 0) - (status?.firstIndex ?? 0)).toBeLessThanOrEqual(64);
    expect((await appliedData(host.groupKv(GROUP))).length).toBe(300);
  });
});
