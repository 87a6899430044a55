// The host writes a group's hard state only when its term or vote changes: the commit index is
// relearned after a restart (from the applied record and the leader). Proven by reading the stored
// record after many commits, then crashing every replica and checking that nothing applied is lost or
// applied twice and that the group goes on committing.

import { describe, expect, it } from 'vitest';
import { hardStateKey } from '../../../raft/storage/keys.js';
import { decodeHardState } from '../../../raft/storage/record-codec.js';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 11;
const IDS = ['a', 'b', 'c'];

describe('RaftHost hard state writes', () => {
  it('does not rewrite the hard state for commit-only changes, and recovers commit after a crash', async () => {
    const cluster = new Cluster({ ids: IDS });
    await cluster.start();
    for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
    const leader = await cluster.waitForLeader(GROUP);
    const stored = async (id: string): Promise<{ term: number; commit: number }> => {
      const value = await cluster.node(id).store.get(hardStateKey(GROUP));
      if (value === undefined) throw new Error(`no hard state on ${id}`);
      return decodeHardState(value);
    };
    const before = await stored(leader);
    const values = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const value of values) {
      const outcome = await cluster.drive(cluster.host(leader).propose(GROUP, bytes(value)));
      expect(outcome.ok).toBe(true);
    }
    for (let i = 0; i < 5; i += 1) await cluster.round(false);
    const commit = cluster.host(leader).status(GROUP)?.commit ?? 0;
    expect(commit).toBeGreaterThan(before.commit + values.length - 1);
    for (const id of IDS) {
      const hardState = await stored(id);
      expect(hardState.term).toBe(before.term);
      expect(hardState.commit).toBeLessThan(commit);
    }

    for (const id of IDS) cluster.crash(id);
    for (const id of IDS) await cluster.open(id);
    const next = await cluster.waitForLeader(GROUP);
    const outcome = await cluster.drive(cluster.host(next).propose(GROUP, bytes('after')));
    expect(outcome.ok).toBe(true);
    await cluster.runUntil(
      async () => {
        const logs = await Promise.all(IDS.map((id) => appliedData(cluster.host(id).groupKv(GROUP))));
        return logs.every((log) => log.join() === [...values, 'after'].join());
      },
      300,
      'every replica applied every value exactly once, then the new one',
    );
  });
});
