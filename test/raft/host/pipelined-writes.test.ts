// Pipelined persistence (RaftHostOptions.pipelineWrites): a turn hands its store write over and ends,
// so later turns step, send and apply while the write is in flight; what depends on the write (the
// node's own copy counting toward commit, a follower's answer, a lone member's commit) still waits
// for it, and writes reach the store one at a time, in turn order. The deterministic simulator runs
// half of its seeds pipelined (test/raft/sim); these are the same rules shown one step at a time.

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { BatchOp, KvStore, ProposeOutcome } from '../../../raft/api.js';
import { MemoryStore } from '../storage/memory-store.js';
import type { GatedStore } from './gated-store.js';
import { gatedCluster } from './gated-store.js';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 4;
const IDS = ['a', 'b', 'c'];

/** A settled gated cluster with pipelined writes and one entry ('warm') applied everywhere. */
const warmCluster = async (
  ids: readonly string[] = IDS,
): Promise<{ cluster: Cluster; stores: Map<string, GatedStore>; leader: string }> => {
  const gated = await gatedCluster(GROUP, ids, { pipelineWrites: true });
  const { cluster, leader } = gated;
  const warm = await cluster.drive(cluster.host(leader).propose(GROUP, bytes('warm')));
  expect(warm.ok).toBe(true);
  for (let i = 0; i < 5; i += 1) await cluster.round(false);
  return gated;
};

const matchOf = (cluster: Cluster, leader: string, follower: string): number =>
  cluster.host(leader).status(GROUP)?.progress?.[follower]?.match ?? -1;

describe('RaftHost with pipelined writes', () => {
  it("a leader whose own write is held keeps turning and commits on its followers' copies", async () => {
    const { cluster, stores, leader } = await warmCluster();
    const leaderStore = stores.get(leader) as GatedStore;
    const lastBefore = cluster.host(leader).status(GROUP)?.lastIndex ?? 0;
    leaderStore.hold();
    const outcomes: ProposeOutcome<string>[] = [];
    for (const text of ['one', 'two']) {
      void cluster
        .host(leader)
        .propose(GROUP, bytes(text))
        .then((outcome) => outcomes.push(outcome));
      // The turn ends although its write is held: the next proposal is stepped and sent at once.
      await cluster.host(leader).turn();
    }
    // One write in flight; the second turn's entry waits behind it instead of racing it to the store.
    expect(leaderStore.held).toBe(1);
    expect(cluster.host(leader).status(GROUP)?.lastIndex).toBe(lastBefore + 2);
    // The followers' durable copies are a quorum: both entries commit while the leader's write is held.
    await cluster.runUntil(
      () => (cluster.host(leader).status(GROUP)?.commit ?? 0) === lastBefore + 2,
      50,
      'both committed',
    );
    expect(leaderStore.held).toBe(1);
    // They apply (and answer) only from the leader's own durable copy, as without pipelining.
    expect(outcomes).toEqual([]);
    leaderStore.release();
    await cluster.runUntil(() => outcomes.length === 2, 50, 'both answered');
    expect(outcomes).toMatchObject([
      { ok: true, index: lastBefore + 1 },
      { ok: true, index: lastBefore + 2 },
    ]);
    expect((await appliedData(cluster.host(leader).groupKv(GROUP))).join()).toBe('warm,one,two');
  });

  it("a follower's answer waits for its own write while its later turns go on", async () => {
    const { cluster, stores, leader } = await warmCluster();
    const follower = IDS.find((id) => id !== leader) as string;
    const followerStore = stores.get(follower) as GatedStore;
    const lastBefore = cluster.host(leader).status(GROUP)?.lastIndex ?? 0;
    expect(matchOf(cluster, leader, follower)).toBe(lastBefore);
    followerStore.hold();
    // Only the leader and this follower turn: the third member's answer would commit the entry.
    const pump = async (rounds: number): Promise<void> => {
      for (let i = 0; i < rounds; i += 1) {
        for (const id of [leader, follower]) {
          if (cluster.host(id).hasWork()) await cluster.host(id).turn();
        }
        await sleep(0);
      }
    };
    void cluster.host(leader).propose(GROUP, bytes('x'));
    await pump(5);
    expect(followerStore.held).toBe(1);
    expect(cluster.host(follower).status(GROUP)?.lastIndex).toBe(lastBefore + 1);
    // Its answer has not left: the leader still thinks it holds only what it held before.
    expect(matchOf(cluster, leader, follower)).toBe(lastBefore);
    followerStore.release();
    await pump(5);
    expect(matchOf(cluster, leader, follower)).toBe(lastBefore + 1);
  });

  it('a lone member answers only after its write, and that answer survives a crash', async () => {
    const { cluster, stores } = await warmCluster(['a']);
    const store = stores.get('a') as GatedStore;
    const host = cluster.host('a');
    let outcome: ProposeOutcome<string> | undefined;
    store.hold();
    void host.propose(GROUP, bytes('solo')).then((value) => (outcome = value));
    for (let i = 0; i < 3; i += 1) {
      await host.turn();
      await sleep(0);
    }
    expect(outcome).toBeUndefined();
    store.release();
    await cluster.runUntil(() => outcome !== undefined, 20, 'the answer');
    expect(outcome).toMatchObject({ ok: true });
    cluster.crash('a');
    await cluster.open('a');
    await cluster.waitForLeader(GROUP);
    await cluster.runUntil(
      async () => (await appliedData(cluster.host('a').groupKv(GROUP))).join() === 'warm,solo',
      200,
      'the answered entry applied after the restart',
    );
  });

  it('writes reach the store one at a time, in the order the turns made them', async () => {
    /**
     * Counts writes in flight at once. Each takes a few event-loop passes, like an fsync, but no real
     * time: the harness's rounds tick Raft's clock without waiting for real time, so a write that
     * slept would let elections time out around it.
     */
    class SlowStore extends MemoryStore {
      active = 0;
      maxActive = 0;
      override async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
        this.active += 1;
        this.maxActive = Math.max(this.maxActive, this.active);
        for (let i = 0; i < 3; i += 1) await new Promise((resolve) => setImmediate(resolve));
        await super.write(ops, options);
        this.active -= 1;
      }
    }
    const stores = new Map<string, SlowStore>(IDS.map((id) => [id, new SlowStore()]));
    const cluster = new Cluster({
      ids: IDS,
      store: (id): KvStore => stores.get(id) as SlowStore,
      pipelineWrites: true,
    });
    await cluster.start();
    for (const id of IDS) await cluster.host(id).bootstrapGroup(GROUP, IDS);
    await cluster.waitForLeader(GROUP);
    // Let the election settle before the proposals: every member follows one leader in one term (a
    // member still campaigning would depose the first leader found, and the proposals fail over).
    const agreed = (): boolean => {
      const statuses = IDS.map((id) => cluster.host(id).status(GROUP));
      const first = statuses[0];
      return statuses.every(
        (status) =>
          status?.leader !== null && status?.leader === first?.leader && status?.term === first?.term,
      );
    };
    await cluster.runUntil(agreed, 200, 'one leader for every member');
    for (let i = 0; i < 5; i += 1) await cluster.round(false);
    const leader = cluster.leaderOf(GROUP) as string;
    const texts = Array.from({ length: 30 }, (_, i) => `e${i}`);
    const outcomes: ProposeOutcome<string>[] = [];
    for (const text of texts) {
      void cluster
        .host(leader)
        .propose(GROUP, bytes(text))
        .then((outcome) => outcomes.push(outcome));
      await cluster.round(false);
    }
    // Rounds do not wait for writes in flight (a turn ends without them): give the slow disk real time.
    const settle = async (
      done: () => Promise<boolean> | boolean,
      what: string,
      ticks: boolean,
    ): Promise<void> => {
      for (let i = 0; i < 500 && !(await done()); i += 1) {
        // With ticks, one every tenth pass: followers learn the last commit index from the leader's
        // heartbeats, while Raft's clock stays slow next to the real time the writes take.
        await cluster.round(ticks && i % 10 === 9);
        await sleep(2);
      }
      expect(await done(), what).toBe(true);
    };
    // No ticks until every proposal is answered: no election can take the leadership meanwhile.
    await settle(() => outcomes.length === texts.length, 'every proposal answered', false);
    expect(outcomes.filter((outcome) => !outcome.ok)).toEqual([]);
    for (const store of stores.values()) expect(store.maxActive).toBe(1);
    for (const id of IDS) {
      await settle(
        async () => (await appliedData(cluster.host(id).groupKv(GROUP))).join() === texts.join(),
        `${id} applied every entry in order`,
        true,
      );
    }
  });
});
