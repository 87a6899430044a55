// Proves the host replicates through real cores over an in-memory network driven by hand: proposals on
// the leader commit on every replica in the same order, a follower answers NOT_LEADER with a hint,
// reads wait for the read index, and a crashed-and-reopened node recovers and catches up.

import { describe, expect, it } from 'vitest';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 5;
const IDS = ['a', 'b', 'c'];

const startCluster = async (): Promise<Cluster> => {
  const cluster = new Cluster({ ids: IDS });
  await cluster.start();
  for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
  return cluster;
};

describe('RaftHost replication', () => {
  it('commits proposals on every replica in the same order', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    const outcomes = await cluster.drive(
      Promise.all(['x', 'y', 'z'].map((value) => cluster.host(leader).propose(GROUP, bytes(value)))),
    );
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true, true]);
    const indexes = outcomes.map((outcome) => (outcome.ok ? outcome.index : -1));
    expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
    expect(outcomes[0]?.ok === true && outcomes[0].result).toBe(`${GROUP}:${indexes[0]}:x`);
    await cluster.runUntil(
      async () => {
        const logs = await Promise.all(IDS.map((id) => appliedData(cluster.host(id).groupKv(GROUP))));
        return logs.every((log) => log.join() === 'x,y,z');
      },
      200,
      'every replica applied x,y,z',
    );
  });

  it('answers NOT_LEADER on a follower, with the leader as hint', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    const follower = IDS.find((id) => id !== leader) as string;
    await cluster.runUntil(
      () => cluster.host(follower).leaderOf(GROUP) === leader,
      100,
      'follower knows leader',
    );
    const outcome = await cluster.drive(cluster.host(follower).propose(GROUP, bytes('nope')));
    expect(outcome).toMatchObject({ ok: false, code: 'NOT_LEADER', leader });
  });

  it('serves readIndex on the leader and on a follower once applied reaches it', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    const written = await cluster.drive(cluster.host(leader).propose(GROUP, bytes('w')));
    expect(written.ok).toBe(true);
    const writtenIndex = written.ok ? written.index : Infinity;
    for (const id of IDS) {
      const read = await cluster.drive(cluster.host(id).readIndex(GROUP));
      expect(read.ok).toBe(true);
      if (read.ok) expect(read.index).toBeGreaterThanOrEqual(writtenIndex);
      expect(cluster.host(id).status(GROUP)?.applied).toBeGreaterThanOrEqual(writtenIndex);
    }
  });

  it('answers NO_GROUP for a group it does not host', async () => {
    const cluster = await startCluster();
    expect(await cluster.host('a').propose(99, bytes('q'))).toMatchObject({ ok: false, code: 'NO_GROUP' });
    expect(await cluster.host('a').readIndex(99)).toMatchObject({ ok: false, code: 'NO_GROUP' });
  });

  it('recovers a crashed follower from its store and catches it up', async () => {
    const cluster = await startCluster();
    const leader = await cluster.waitForLeader(GROUP);
    const follower = IDS.find((id) => id !== leader) as string;
    const first = await cluster.drive(cluster.host(leader).propose(GROUP, bytes('before')));
    expect(first.ok).toBe(true);
    await cluster.runUntil(
      async () => (await appliedData(cluster.host(follower).groupKv(GROUP))).length === 1,
    );
    cluster.crash(follower);
    const second = await cluster.drive(cluster.host(leader).propose(GROUP, bytes('during')));
    expect(second.ok).toBe(true);
    const reopened = await cluster.open(follower);
    expect(reopened.groups()).toEqual([GROUP]);
    await cluster.runUntil(
      async () => (await appliedData(reopened.groupKv(GROUP))).join() === 'before,during',
      300,
      'reopened follower caught up',
    );
    expect(cluster.node(follower).fatal).toEqual([]);
  });
});
