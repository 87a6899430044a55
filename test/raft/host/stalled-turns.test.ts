// A turn that stalls (a flood of large appends, a slow fsync) must not turn into an election: the
// ticks that came during it are applied in the next turn, after the messages that arrived meanwhile,
// and as one tick; and one turn hands at most turnProposalBytesMax of proposals to the cores, so a
// flood is spread over turns instead of making one long turn.

import { describe, expect, it } from 'vitest';
import type { ProposeOutcome } from '../../../raft/api.js';
import type { GatedStore } from './gated-store.js';
import { gatedCluster } from './gated-store.js';
import { appliedData, bytes, Cluster } from './harness.js';

const GROUP = 6;
const IDS = ['a', 'b', 'c'];

describe('RaftHost under stalled turns', () => {
  it('a leader whose turn stalls past an election timeout keeps its leadership and term', async () => {
    const { cluster, stores, leader } = await gatedCluster(GROUP, IDS);
    const term = cluster.host(leader).status(GROUP)?.term;
    const followers = IDS.filter((id) => id !== leader);
    // The leader's turn waits on its write while three election timeouts of ticks go by, as when
    // every node of an overloaded cluster is busy at once (the followers do not tick meanwhile).
    const leaderStore = stores.get(leader) as GatedStore;
    leaderStore.hold();
    void cluster.host(leader).propose(GROUP, bytes('during the stall'));
    const stalled = cluster.host(leader).turn();
    await new Promise((resolve) => setImmediate(resolve));
    expect(leaderStore.held).toBe(1);
    for (let i = 0; i < 30; i += 1) {
      cluster.clockMs += 10;
      cluster.host(leader).tick();
    }
    leaderStore.release();
    await stalled;
    for (let i = 0; i < 20; i += 1) await cluster.round();
    expect(cluster.host(leader).status(GROUP)).toMatchObject({ role: 'leader', term });
    for (const id of followers) expect(cluster.host(id).status(GROUP)?.term).toBe(term);
  });

  it('hands at most the byte budget of proposals to the cores per turn, the rest in order after', async () => {
    const cluster = new Cluster({ ids: ['a'], limits: { turnProposalBytesMax: 100 } });
    await cluster.start();
    await cluster.host('a').bootstrapGroup(GROUP, ['a']);
    await cluster.waitForLeader(GROUP);
    await cluster.round(false);
    const host = cluster.host('a');
    const lastBefore = host.status(GROUP)?.lastIndex ?? 0;
    const texts = Array.from({ length: 5 }, (_, i) => `${i}`.padEnd(60, '.'));
    const outcomes: ProposeOutcome<string>[] = [];
    for (const text of texts) void host.propose(GROUP, bytes(text)).then((outcome) => outcomes.push(outcome));
    await host.turn();
    // 60 bytes, then 60 more while 40 of the budget were left; the other three wait.
    expect(host.status(GROUP)?.lastIndex).toBe(lastBefore + 2);
    expect(host.hasWork()).toBe(true);
    await cluster.runUntil(() => outcomes.length === texts.length, 50, 'every proposal answered');
    expect(outcomes.map((outcome) => (outcome.ok ? outcome.index : -1))).toEqual(
      texts.map((_, i) => lastBefore + 1 + i),
    );
    expect((await appliedData(host.groupKv(GROUP))).join()).toBe(texts.join());
  });
});
