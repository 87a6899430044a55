// Raft thesis §10.2.1: a leader replicates an entry while its own write of that entry is still in
// flight, so its fsync and its followers' overlap. Proven with a leader store whose writes are held:
// the followers receive and persist the entry meanwhile, yet the proposal is answered only after the
// leader's write, and a follower's answer (AppResp) still waits for the follower's own write.

import { describe, expect, it } from 'vitest';
import type { BatchOp, KvStore } from '../../../raft/api.js';
import { MemoryStore } from '../storage/memory-store.js';
import { bytes, Cluster } from './harness.js';

const GROUP = 3;
const IDS = ['a', 'b', 'c'];

/** A MemoryStore whose writes can be held until released. */
class GatedStore extends MemoryStore {
  private gate: { promise: Promise<void>; release: () => void } | undefined;
  held = 0;

  hold(): void {
    let release = (): void => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.gate = { promise, release };
  }

  release(): void {
    this.gate?.release();
    this.gate = undefined;
  }

  override async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
    if (this.gate !== undefined) {
      this.held += 1;
      await this.gate.promise;
    }
    return super.write(ops, options);
  }
}

describe('RaftHost leader sending before its own write', () => {
  it('followers persist the entry while the leader write is held; the answer waits for it', async () => {
    const stores = new Map<string, GatedStore>(IDS.map((id) => [id, new GatedStore()]));
    const cluster = new Cluster({ ids: IDS, store: (id): KvStore => stores.get(id) as GatedStore });
    await cluster.start();
    for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
    const leader = await cluster.waitForLeader(GROUP);
    await cluster.drive(cluster.host(leader).propose(GROUP, bytes('warm')));
    for (let i = 0; i < 5; i += 1) await cluster.round(false);
    const followers = IDS.filter((id) => id !== leader);
    const leaderStore = stores.get(leader) as GatedStore;
    const lastBefore = cluster.host(leader).status(GROUP)?.lastIndex ?? 0;

    leaderStore.hold();
    let outcome: unknown;
    void cluster
      .host(leader)
      .propose(GROUP, bytes('early'))
      .then((value) => (outcome = value));
    const leaderTurn = cluster.host(leader).turn();
    await new Promise((resolve) => setImmediate(resolve));
    expect(leaderStore.held).toBe(1);

    // The App already reached the followers: they persist it and answer while the leader still waits.
    for (const id of followers) {
      expect(cluster.host(id).hasWork()).toBe(true);
      await cluster.host(id).turn();
      expect(cluster.host(id).status(GROUP)?.lastIndex).toBe(lastBefore + 1);
    }
    expect(outcome).toBeUndefined();

    leaderStore.release();
    await leaderTurn;
    await cluster.runUntil(() => outcome !== undefined, 50, 'the proposal answered');
    expect(outcome).toMatchObject({ ok: true, index: lastBefore + 1 });
  });

  it('a follower answers an App only after its own write', async () => {
    const stores = new Map<string, GatedStore>(IDS.map((id) => [id, new GatedStore()]));
    const cluster = new Cluster({ ids: IDS, store: (id): KvStore => stores.get(id) as GatedStore });
    await cluster.start();
    for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
    const leader = await cluster.waitForLeader(GROUP);
    for (let i = 0; i < 5; i += 1) await cluster.round(false);
    const follower = IDS.find((id) => id !== leader) as string;
    const followerStore = stores.get(follower) as GatedStore;

    void cluster.host(leader).propose(GROUP, bytes('x'));
    await cluster.host(leader).turn();
    followerStore.hold();
    const followerTurn = cluster.host(follower).turn();
    await new Promise((resolve) => setImmediate(resolve));
    expect(followerStore.held).toBe(1);
    // Nothing from the follower reached the leader while its write is held.
    expect(cluster.host(leader).hasWork()).toBe(false);
    followerStore.release();
    await followerTurn;
    expect(cluster.host(leader).hasWork()).toBe(true);
  });
});
