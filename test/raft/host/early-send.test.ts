// Raft thesis §10.2.1: a leader replicates an entry while its own write of that entry is still in
// flight, so its fsync and its followers' overlap. Proven with a leader store whose writes are held:
// the followers receive and persist the entry meanwhile, yet the proposal is answered only after the
// leader's write, and a follower's answer (AppResp) still waits for the follower's own write. A turn's
// answers that another turn follows at once leave in that turn's frame, with its early messages.

import { describe, expect, it } from 'vitest';
import type { KvStore } from '../../../raft/api.js';
import { MessageType } from '../../../raft/core/types.js';
import { GatedStore } from './gated-store.js';
import { bytes, Cluster } from './harness.js';

const GROUP = 3;
const IDS = ['a', 'b', 'c'];

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

/**
 * A node that follows GROUP and leads another group has just persisted an App of GROUP while a
 * proposal for its own group arrived: it has work after that turn, so its answer is held.
 */
const heldAnswer = async (): Promise<{
  cluster: Cluster;
  leader: string;
  node: string;
  other: number;
  frames: NonNullable<Cluster['network']['recorded']>;
}> => {
  const stores = new Map<string, GatedStore>(IDS.map((id) => [id, new GatedStore()]));
  const cluster = new Cluster({ ids: IDS, store: (id): KvStore => stores.get(id) as GatedStore });
  await cluster.start();
  const other = GROUP + 1;
  for (const group of [GROUP, other]) {
    for (const id of IDS) await cluster.host(id).bootstrapGroup(group, IDS);
  }
  const leader = await cluster.waitForLeader(GROUP);
  const node = IDS.find((id) => id !== leader) as string;
  await cluster.waitForLeader(other);
  if (cluster.leaderOf(other) !== node) {
    cluster.host(cluster.leaderOf(other) as string).transferLeader(other, node);
    await cluster.waitForLeader(other, [node]);
  }
  for (let i = 0; i < 5; i += 1) await cluster.round(false);

  const frames: NonNullable<Cluster['network']['recorded']> = [];
  cluster.network.recorded = frames;
  void cluster.host(leader).propose(GROUP, bytes('answered later'));
  await cluster.host(leader).turn();
  const store = stores.get(node) as GatedStore;
  store.hold();
  const turn = cluster.host(node).turn();
  await new Promise((resolve) => setImmediate(resolve));
  void cluster.host(node).propose(other, bytes('next turn'));
  store.release();
  await turn;
  return { cluster, leader, node, other, frames };
};

describe('RaftHost answers riding with the next turn', () => {
  it("a turn's answer waits for the next turn's early App and leaves in the same frame", async () => {
    const { cluster, leader, node, other, frames } = await heldAnswer();
    expect(frames.filter((frame) => frame.from === node)).toEqual([]);
    expect(cluster.host(leader).hasWork()).toBe(false);

    await cluster.host(node).turn();
    const toLeader = frames.filter((frame) => frame.from === node && frame.to === leader);
    expect(toLeader).toHaveLength(1);
    const kinds = toLeader[0]!.batch.map(({ group, message }) => [group, message.type]);
    expect(kinds).toContainEqual([GROUP, MessageType.AppResp]);
    expect(kinds).toContainEqual([other, MessageType.App]);
  });

  it('a held answer still leaves when the host closes instead of turning again', async () => {
    const { cluster, leader, node } = await heldAnswer();
    expect(cluster.host(leader).hasWork()).toBe(false);
    await cluster.host(node).close();
    expect(cluster.host(leader).hasWork()).toBe(true);
  });
});
