// A replica its group removed is forgotten with RaftHost.forgetGroup: the group moves from a,b,c to
// a,b,d (learner, promote, remove) on simulated hosts, then c deletes its copy. Its store then holds
// nothing of the group (so a restart does not bring it back), the group keeps committing on a,b,d,
// and the leader refuses to forget a group it leads.

import { describe, expect, it } from 'vitest';

import type { KvStore } from '../../raft/api.js';
import type { ConfChange } from '../../raft/core/types.js';
import { groupSpacePrefix, hardStateKey, logMetaKey, prefixRange } from '../../raft/storage/keys.js';
import { appliedData, bytes, Cluster } from '../raft/host/harness.js';

const GROUP = 5;

const keysOfGroup = async (store: KvStore): Promise<number> => {
  let count = 0;
  for (const key of [hardStateKey(GROUP), logMetaKey(GROUP)])
    if ((await store.get(key)) !== undefined) count += 1;
  for (const prefix of [Uint8Array.of(0x02, 0, GROUP), groupSpacePrefix(GROUP)]) {
    for await (const _pair of store.iterate(prefixRange(prefix))) count += 1;
  }
  return count;
};

describe('forgetting a moved replica', () => {
  it('deletes every key of the group and keeps the group going without it', async () => {
    const cluster = new Cluster({ ids: ['a', 'b', 'c', 'd'], acceptUnknownGroup: true });
    await cluster.start();
    for (const id of ['a', 'b', 'c']) await cluster.host(id).bootstrapGroup(GROUP, ['a', 'b', 'c']);
    const leader = await cluster.waitForLeader(GROUP, ['a', 'b']);
    const values = ['one', 'two', 'three'];
    for (const value of values) {
      expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes(value)))).ok).toBe(true);
    }
    const change = async (step: ConfChange): Promise<void> => {
      const outcome = await cluster.drive(cluster.host(leader).changeMembership(GROUP, step));
      expect(outcome.ok, JSON.stringify(outcome)).toBe(true);
    };
    await change({ type: 'add_learner', node: 'd' });
    await cluster.runUntil(
      () => {
        const status = cluster.host(leader).status(GROUP);
        return (status?.progress?.['d']?.match ?? 0) >= (status?.commit ?? 1);
      },
      300,
      'd caught up',
    );
    await change({ type: 'promote', node: 'd' });
    await change({ type: 'remove', node: 'c' });
    expect(await keysOfGroup(cluster.node('c').store)).toBeGreaterThan(0);

    expect(await cluster.host(leader).forgetGroup(GROUP)).toBe(false);
    expect(await cluster.host('c').forgetGroup(GROUP)).toBe(true);
    expect(cluster.host('c').groups()).not.toContain(GROUP);
    expect(await keysOfGroup(cluster.node('c').store)).toBe(0);
    expect(cluster.node('c').stateMachine.restoredCalls.map(([group]) => group)).toContain(GROUP);

    const after = await cluster.drive(cluster.host(leader).propose(GROUP, bytes('after')));
    expect(after.ok).toBe(true);
    await cluster.runUntil(
      async () =>
        (await appliedData(cluster.host('d').groupKv(GROUP))).join() === [...values, 'after'].join(),
      300,
      'd applied everything',
    );

    cluster.crash('c');
    await cluster.open('c');
    expect(cluster.host('c').groups()).not.toContain(GROUP);
    expect(cluster.node('c').fatal).toEqual([]);
  });
});
