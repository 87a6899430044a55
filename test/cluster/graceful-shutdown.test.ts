// Graceful shutdown on three real nodes under a recorded workload (the fault suite's writers, which
// retry one append with its Idempotency-Key on 503 and on connection errors, on the next node):
//   - SIGTERM the node leading the most groups: it exits 0 within the grace period, and the moment
//     it is gone the survivors already lead every group (leadership was handed over, not lost to
//     an election timeout); nothing acknowledged is lost.
//   - A rolling restart (SIGTERM, start again, wait ready, next node): zero failed appends.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { clusterStatus, eventually, leaderCounts, sleep, waitReady } from './cluster-harness.js';
import type { FaultCluster, FaultNode } from '../fault/processes.js';
import { stopAll } from '../fault/processes.js';
import { Recorder } from '../fault/recorder.js';
import { busiestLeader, finalCheck, setUpContexts, startFaultCluster } from '../fault/scenario-kit.js';
import { startWorkload } from '../fault/workload.js';

/** The grace period the nodes run with here (the default is 25 s; the sequence shares it the same way). */
const GRACE_MS = 12_000;

describe('graceful shutdown', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  const recorder = new Recorder();

  beforeAll(async () => {
    cluster = await startFaultCluster(
      { FASTPACA_SHUTDOWN_TIMEOUT_MS: String(GRACE_MS), FASTPACA_LOG_LEVEL: 'info' },
      false,
    );
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'graceful');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  const workload = () =>
    startWorkload({
      contexts,
      targets: () => nodes.filter((node) => node.alive()),
      writers: 6,
      readers: 2,
      recorder,
      writePauseMs: 5,
      readPauseMs: 20,
      // Unconditional appends only: a lost if_version race (409) is not a failed append.
      ifVersionRatio: 0,
      // A rolling restart takes a while per node: never give an append up.
      attemptsMax: 1_000,
    });

  it('SIGTERM under load: exit 0 within the grace period, the survivors lead every group at once, nothing acknowledged lost', async () => {
    const running = workload();
    await sleep(2_000);
    const victim = nodes[await busiestLeader(nodes)] as FaultNode;
    const survivors = nodes.filter((node) => node !== victim);
    const before = await clusterStatus(survivors[0] as FaultNode);
    expect(before.groups.filter((group) => group.leader === victim.name).length).toBeGreaterThan(0);

    const started = Date.now();
    const exit = await victim.terminate(GRACE_MS + 5_000);
    const tookMs = Date.now() - started;
    expect(exit, victim.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(GRACE_MS);

    // Right after the exit (well inside one election timeout, 1 s here), every group, the
    // membership group included, already has a leader among the survivors.
    const after = await Promise.all(survivors.map((node) => clusterStatus(node)));
    for (const status of after) {
      for (const group of [...status.groups, ...(status.meta === undefined ? [] : [status.meta])]) {
        expect(group.leader, `group ${group.group} on ${status.node_id}`).not.toBeNull();
        expect(group.leader, `group ${group.group} on ${status.node_id}`).not.toBe(victim.name);
      }
    }
    const log = victim.output();
    expect(log).toContain('leadership handed away');
    const handoffMs = /"type":"shutdown_handoff"[^\n]*"ms":(\d+)/.exec(log)?.[1];
    console.log(`SIGTERM to exit ${tookMs} ms; leadership handoff ${handoffMs ?? '?'} ms`);
    expect(log).toContain('graceful shutdown complete');

    await sleep(1_500);
    const result = await running.stop();
    expect(result.unexpected).toEqual([]);
    expect(result.appendsAbandoned).toBe(0);
    victim.start();
    await waitReady(nodes, 60_000);
    await finalCheck(nodes, contexts, recorder);
  }, 180_000);

  it('a rolling restart under load: zero failed appends for clients that retry with their idempotency key', async () => {
    const since = recorder.now();
    const running = workload();
    await sleep(1_000);
    for (const node of nodes) {
      const exit = await node.terminate(GRACE_MS + 5_000);
      expect(exit, node.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
      await sleep(500);
      node.start();
      await waitReady(nodes, 60_000);
      // The restarted node takes its share of leadership back before the next one goes.
      await eventually(`${node.name} leads groups again`, 45_000, async () => {
        const status = await clusterStatus(node);
        return status.groups.some((group) => group.leader === node.name);
      }).catch(async (error: unknown) => {
        const views = await Promise.all(
          nodes.map(async (n) =>
            n.alive()
              ? JSON.stringify([...leaderCounts(await clusterStatus(n))])
              : `${n.name} down ${JSON.stringify(n.lastExit())}`,
          ),
        );
        const logs = nodes.map((n) => `--- ${n.name}\n${n.output().slice(-5_000)}`).join('\n');
        throw new Error(`${(error as Error).message}: ${views.join(' ')}\n${logs}`);
      });
    }
    await sleep(1_000);
    const result = await running.stop();
    expect(result.unexpected).toEqual([]);
    expect(result.appendsAbandoned).toBe(0);
    const appends = recorder.history().filter((event) => event.start >= since && event.op.kind === 'append');
    const acked = new Set(
      appends.filter((event) => event.status === 201 || event.status === 200).map((e) => e.op),
    );
    // Every append some writer started was eventually acknowledged (a retry answered it).
    const started = new Set(appends.map((event) => (event.op.kind === 'append' ? event.op.key : '')));
    const ackedKeys = new Set([...acked].map((op) => (op.kind === 'append' ? op.key : '')));
    expect([...started].filter((key) => !ackedKeys.has(key))).toEqual([]);
    await finalCheck(nodes, contexts, recorder);
  }, 300_000);
});
