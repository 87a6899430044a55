// Links that are slow or lossy rather than cut, on three real nodes whose every gRPC link runs
// through a proxy this test controls, under the recorded workload. A slow network (every link
// delayed) must cost latency, not leadership: no group elects while it lasts. A lossy network (chunks
// lost, each loss breaking its connection, which the links redial) must keep the cluster making
// progress. One slow link between a leader and a follower must not cost an election.
// After each: writable at once, and the checker finds every acknowledged append exactly once, with
// contiguous seqs, no stale read and identical replicas.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { sleep } from '../cluster/cluster-harness.js';
import type { FaultCluster, FaultNode } from './processes.js';
import { stopAll } from './processes.js';
import { Recorder, describeCounts } from './recorder.js';
import {
  budgetMs,
  busiestLeader,
  faultMs,
  finalCheck,
  groupStates,
  setUpContexts,
  startFaultCluster,
  termGrowth,
  waitLeadersPreferred,
  type GroupState,
} from './scenario-kit.js';
import type { DirectionFault } from './tcp-proxy.js';
import { passing } from './tcp-proxy.js';
import { probeWritable, startWorkload } from './workload.js';

describe('slow and lossy links', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  const recorder = new Recorder();

  beforeAll(async () => {
    cluster = await startFaultCluster();
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'link');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  const statesOf = async (): Promise<Map<number, GroupState>[]> =>
    Promise.all(nodes.map((node) => groupStates(node)));

  /** Every directed link i → j for which `pick` holds gets `fault` on both of its directions. */
  const degrade = (fault: DirectionFault, pick: (from: number, to: number) => boolean): void => {
    for (let from = 0; from < nodes.length; from += 1) {
      for (let to = 0; to < nodes.length; to += 1) {
        if (from !== to && pick(from, to)) cluster.proxy(from, to).set({ up: fault, down: fault });
      }
    }
  };

  /**
   * Runs the workload for faultMs(shortMs) under `apply`, heals, and checks progress during the
   * fault, time to writable after it, terms (at most `termGrowthMax` per group over the fault), and
   * the history.
   */
  const linkScenario = async (
    label: string,
    apply: () => void,
    shortMs: number,
    termGrowthMax: number,
  ): Promise<void> => {
    // Terms count from a cluster whose leader balancer is done: its transfers are not elections.
    await waitLeadersPreferred(nodes, 30_000);
    const workload = startWorkload({
      contexts,
      targets: () => nodes,
      writers: 4,
      readers: 3,
      recorder,
      writePauseMs: 10,
      readPauseMs: 10,
    });
    try {
      await sleep(1_000);
      const before = await statesOf();
      const ackedBefore = workload.acked();
      const faultAt = recorder.now();
      apply();
      await sleep(faultMs(shortMs));
      const ackedDuring = workload.acked() - ackedBefore;
      const during = await statesOf();
      cluster.heal();
      const healAt = recorder.now();
      const writableMs = await probeWritable(recorder, contexts, () => nodes, healAt, 15_000);
      const result = await workload.stop();
      const growth = nodes.map((_, i) => termGrowth(before[i] ?? new Map(), during[i] ?? new Map()));
      console.log(
        `${label}: ${ackedDuring} appends acknowledged during ${faultMs(shortMs)} ms; writable ${writableMs} ms after the heal; ` +
          `term growth per node ${growth.map((g) => `+${g.total} (max +${g.max})`).join('/')}; answers since fault ${describeCounts(recorder.statusCounts(faultAt))}`,
      );
      expect(result.unexpected).toEqual([]);
      expect(ackedDuring).toBeGreaterThan(0);
      expect(writableMs).toBeLessThanOrEqual(5_000);
      for (const g of growth) expect(g.max).toBeLessThanOrEqual(termGrowthMax);
      await finalCheck(nodes, contexts, recorder);
    } finally {
      cluster.heal();
      await workload.stop();
    }
  };

  it(
    'every link delayed 60 ms each way (about a quarter of an election timeout per round trip): no election',
    () =>
      linkScenario('every link delayed', () => degrade({ ...passing, delayMs: 60 }, () => true), 4_000, 0),
    budgetMs(4_000, 1, 60_000),
  );

  it(
    'every link losing 1 % of its chunks, each loss breaking the connection: progress continues',
    () =>
      linkScenario(
        'lossy links',
        () => degrade({ ...passing, dropProbability: 0.01 }, () => true),
        4_000,
        // Loss that breaks connections can cost a leader its quorum for a moment; never a storm.
        2,
      ),
    budgetMs(4_000, 1, 60_000),
  );

  it(
    'the busiest leader’s links to one follower delayed 400 ms: no election, writes continue',
    async () => {
      const leader = await busiestLeader(nodes);
      const slow = (leader + 1) % nodes.length;
      await linkScenario(
        `links ${nodes[leader]?.name ?? ''}↔${nodes[slow]?.name ?? ''} delayed`,
        () =>
          degrade(
            { ...passing, delayMs: 400 },
            (from, to) => (from === leader && to === slow) || (from === slow && to === leader),
          ),
        4_000,
        0,
      );
    },
    budgetMs(4_000, 1, 60_000),
  );
});
