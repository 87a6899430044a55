// Partitions of a leader, a paused leader and lost quorum, on three real nodes whose every gRPC link
// runs through a proxy this test controls, under a recorded workload (writers with idempotency keys
// and if_version, readers on every node including the one cut off). Each scenario asserts its own
// criterion; after each, the checker asserts that every acknowledged append is present exactly once
// with contiguous seqs, no read was stale, and the replicas are identical.
//
// Terms come from every node's cluster status (per group). Pre-vote and check-quorum keep a node
// that is cut off from raising terms, so when it returns it finds higher terms and follows: its own
// terms must not grow while it is away, and after the heal no group's term grows by more than one
// (one leadership transfer by the balancer, never a deposition by the returning node's term).

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
  type GroupState,
} from './scenario-kit.js';
import { probeWritable, startWorkload, type WorkloadOptions } from './workload.js';

/** Writable again after a leader is cut off: check-quorum (≤ 2 s) + an election (1–2 s) + slack. */
const WRITABLE_MS_MAX = 10_000;

describe('partitions and pauses', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  /** One history for the whole file: the contexts carry every scenario's appends. */
  const recorder = new Recorder();

  beforeAll(async () => {
    cluster = await startFaultCluster();
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'part');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  /** The steady workload every scenario here runs: 4 writers, 3 readers, 10 ms pauses. */
  const steadyWorkload = (targets: () => readonly FaultNode[], extra: Partial<WorkloadOptions> = {}) =>
    startWorkload({
      contexts,
      targets,
      writers: 4,
      readers: 3,
      recorder,
      writePauseMs: 10,
      readPauseMs: 10,
      ...extra,
    });

  const statesOf = async (): Promise<Map<string, Map<number, GroupState>>> =>
    new Map(await Promise.all(nodes.map(async (node) => [node.name, await groupStates(node)] as const)));

  /** The highest term each group has on any node. */
  const highest = (states: ReadonlyMap<string, ReadonlyMap<number, GroupState>>): Map<number, GroupState> => {
    const result = new Map<number, GroupState>();
    for (const perNode of states.values()) {
      for (const [group, state] of perNode) {
        if (state.term >= (result.get(group)?.term ?? -1)) result.set(group, state);
      }
    }
    return result;
  };

  /**
   * Runs the workload through `fault` (applied to the busiest leader) for faultMs(shortMs), heals,
   * and checks: writable again, the victim's terms did not grow while away, at most one term per
   * group after the heal, no stale read, nothing lost or duplicated.
   */
  const partitionScenario = async (
    label: string,
    apply: (victim: number) => void,
    shortMs: number,
  ): Promise<void> => {
    const workload = steadyWorkload(() => nodes);
    try {
      await sleep(1_500);
      const victim = await busiestLeader(nodes);
      const victimNode = nodes[victim] as FaultNode;
      const before = await statesOf();
      const faultAt = recorder.now();
      apply(victim);
      const majority = nodes.filter((node) => node !== victimNode);
      const writableMs = await probeWritable(
        recorder,
        contexts,
        () => majority,
        faultAt,
        WRITABLE_MS_MAX + 5_000,
      );
      await sleep(Math.max(0, faultMs(shortMs) - (recorder.now() - faultAt)));
      const during = await statesOf();
      const victimGrowth = termGrowth(
        before.get(victimNode.name) ?? new Map(),
        during.get(victimNode.name) ?? new Map(),
      );
      const majorityTerms = highest(new Map([...during].filter(([name]) => name !== victimNode.name)));
      const majorityGrowth = termGrowth(highest(before), majorityTerms);
      // Terms the victim holds above the majority's: it raised them itself (no pre-vote).
      const inflated = [...(during.get(victimNode.name) ?? new Map<number, GroupState>())].filter(
        ([group, state]) => state.term > (majorityTerms.get(group)?.term ?? 0),
      ).length;
      cluster.heal();
      const healAt = recorder.now();
      await sleep(3_000);
      const after = await statesOf();
      const afterHeal = termGrowth(highest(during), highest(after));
      const result = await workload.stop();
      const counts = describeCounts(recorder.statusCounts(faultAt));
      console.log(
        `${label} of ${victimNode.name}: writable again after ${writableMs} ms; ` +
          `victim terms +${victimGrowth.total} (max +${victimGrowth.max}, ${inflated} above the majority's); majority +${majorityGrowth.total} over ${majorityGrowth.groups} groups (max +${majorityGrowth.max}); ` +
          `after heal +${afterHeal.total} over ${afterHeal.groups} groups (max +${afterHeal.max}); answers since fault ${counts}; ` +
          `acked ${result.appendsAcked}, abandoned ${result.appendsAbandoned}; heal at +${Math.round(healAt - faultAt)} ms`,
      );
      expect(result.unexpected).toEqual([]);
      expect(writableMs).toBeLessThanOrEqual(WRITABLE_MS_MAX);
      // Pre-vote: a node cut off never raises its terms above the majority's (it may learn theirs),
      // so it cannot depose anyone on return.
      expect(inflated).toBe(0);
      // No election storm: each group the majority took over needed one election, seldom two.
      expect(majorityGrowth.max).toBeLessThanOrEqual(2);
      expect(afterHeal.max).toBeLessThanOrEqual(1);
      await finalCheck(nodes, contexts, recorder);
    } finally {
      cluster.heal();
      await workload.stop();
    }
  };

  it(
    'a leader cut off both ways: the majority takes over, it returns without deposing anyone',
    () => partitionScenario('symmetric partition', (victim) => cluster.isolate(victim), 5_000),
    budgetMs(5_000, 1, 60_000),
  );

  it(
    'a leader whose messages are lost (it still hears the others)',
    () =>
      partitionScenario('one-way partition (outbound lost)', (victim) => cluster.muteOutbound(victim), 4_000),
    budgetMs(4_000, 1, 60_000),
  );

  it(
    'a leader that hears nothing (its own messages still arrive)',
    () =>
      partitionScenario('one-way partition (inbound lost)', (victim) => cluster.muteInbound(victim), 4_000),
    budgetMs(4_000, 1, 60_000),
  );

  it(
    'a leader paused with SIGSTOP, then resumed with SIGCONT',
    async () => {
      const workload = steadyWorkload(() => nodes.filter((node) => !node.stopped()));
      try {
        await sleep(1_500);
        const victim = nodes[await busiestLeader(nodes)] as FaultNode;
        const before = await statesOf();
        const stopAt = recorder.now();
        victim.sigstop();
        const others = nodes.filter((node) => node !== victim);
        const writableMs = await probeWritable(
          recorder,
          contexts,
          () => others,
          stopAt,
          WRITABLE_MS_MAX + 5_000,
        );
        await sleep(Math.max(0, faultMs(4_000) - (recorder.now() - stopAt)));
        // Read by every node while the victim is paused: its status would hang, so only the others.
        const during = new Map(
          await Promise.all(
            nodes
              .filter((node) => node !== victim)
              .map(async (node) => [node.name, await groupStates(node)] as const),
          ),
        );
        // Readers go to the paused node too once it resumes: it must not answer from its old state.
        victim.sigcont();
        await sleep(3_000);
        const after = await statesOf();
        const victimAfter = after.get(victim.name) ?? new Map<number, GroupState>();
        const majority = highest(during);
        const victimGrowth = termGrowth(before.get(victim.name) ?? new Map(), victimAfter);
        const afterResume = termGrowth(majority, highest(after));
        const result = await workload.stop();
        console.log(
          `SIGSTOP of ${victim.name}: writable again after ${writableMs} ms; majority terms +${termGrowth(highest(before), majority).total}; ` +
            `after SIGCONT +${afterResume.total} over ${afterResume.groups} groups (max +${afterResume.max}); victim +${victimGrowth.total}; ` +
            `answers since stop ${describeCounts(recorder.statusCounts(stopAt))}; acked ${result.appendsAcked}`,
        );
        expect(result.unexpected).toEqual([]);
        expect(writableMs).toBeLessThanOrEqual(WRITABLE_MS_MAX);
        expect(afterResume.max).toBeLessThanOrEqual(1);
        await finalCheck(nodes, contexts, recorder);
      } finally {
        for (const node of nodes) if (node.stopped()) node.sigcont();
        await workload.stop();
      }
    },
    budgetMs(4_000, 1, 60_000),
  );

  it(
    'quorum lost (every link cut), then recovered: no 201 while it is lost',
    async () => {
      const workload = steadyWorkload(() => nodes, { requestTimeoutMs: 6_000 });
      try {
        await sleep(1_500);
        const cutAt = recorder.now();
        for (const [i] of nodes.entries()) cluster.isolate(i);
        // Twice the proposal timeout (3 s): appends sent after the cut get their 503 before the heal.
        await sleep(faultMs(6_000));
        const healAt = recorder.now();
        cluster.heal();
        const writableMs = await probeWritable(
          recorder,
          contexts,
          () => nodes,
          healAt,
          WRITABLE_MS_MAX + 5_000,
        );
        const result = await workload.stop();
        const history = recorder.history();
        // Started after the cut and answered before the heal: nothing can have committed.
        const during = history.filter((event) => event.start > cutAt && event.end < healAt);
        const answersWhileLost = new Map<number, number>();
        for (const event of during)
          answersWhileLost.set(event.status, (answersWhileLost.get(event.status) ?? 0) + 1);
        const written = during.filter(
          (event) => event.op.kind === 'append' && (event.status === 201 || event.status === 200),
        );
        const read = during.filter((event) => event.op.kind === 'read' && event.status === 200);
        console.log(
          `quorum loss for ${Math.round(healAt - cutAt)} ms: answers started and ended while lost ${describeCounts(answersWhileLost)}; ` +
            `writable after heal in ${writableMs} ms; acked ${result.appendsAcked}`,
        );
        expect(result.unexpected).toEqual([]);
        expect(during.filter((event) => event.op.kind === 'append').length).toBeGreaterThan(0);
        expect(written.map((event) => `${event.op.context} ${event.status} on ${event.node}`)).toEqual([]);
        // Reads are linearizable: without a quorum, no read can be confirmed either.
        expect(read.map((event) => `${event.op.context} on ${event.node}`)).toEqual([]);
        expect(writableMs).toBeLessThanOrEqual(WRITABLE_MS_MAX);
        await finalCheck(nodes, contexts, recorder);
      } finally {
        cluster.heal();
        await workload.stop();
      }
    },
    budgetMs(6_000, 1, 60_000),
  );
});
