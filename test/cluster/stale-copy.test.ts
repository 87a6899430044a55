// Restoring an old copy of a member's data directory never breaks safety. Three real nodes under a
// recorded workload, with every node's view of every group's (term, leader) sampled throughout:
//   - A node SIGKILLed and restarted on its own data (a crash) is not refused: it is ready again.
//   - A volume snapshot of a member (SIGSTOP, copy its data directory, SIGCONT) is restored onto it
//     after it ran on for a while (SIGKILL, replace the directory with the copy, start): the node
//     refuses to start (exit 2) with a message naming the fix, before its replicas could vote or
//     acknowledge anything; the other two keep taking writes, nothing acknowledged is lost, and no
//     group ever had two leaders in one term. An online snapshot of the member restored onto it is
//     refused in the same way.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generationIntervalMs } from '../../src/cluster/membership/generation.js';
import { runFastpaca, sleep, waitReady } from './cluster-harness.js';
import { startLeaderSampler } from './leader-sampler.js';
import type { FaultCluster, FaultNode } from '../fault/processes.js';
import { stopAll } from '../fault/processes.js';
import { Recorder } from '../fault/recorder.js';
import { finalCheck, setUpContexts, startFaultCluster } from '../fault/scenario-kit.js';
import { startWorkload } from '../fault/workload.js';

describe('a stale copy of a member restored under load', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  const recorder = new Recorder();

  beforeAll(async () => {
    cluster = await startFaultCluster({}, false);
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'stale');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  it('a crashed node restarts; a restored older copy is refused; nothing acknowledged lost, one leader per term', async () => {
    const sampler = startLeaderSampler(nodes);
    const workload = startWorkload({
      contexts,
      targets: () => nodes.filter((node) => node.alive() && !node.stopped()),
      writers: 4,
      readers: 2,
      recorder,
      writePauseMs: 5,
      readPauseMs: 20,
    });
    await sleep(2_000);

    // A crash is not a stale copy: the node comes back.
    const crashed = nodes[2] as FaultNode;
    await crashed.kill();
    crashed.start();
    await waitReady(nodes, 60_000);

    // An online snapshot of node-2, and a volume snapshot, both taken while it runs under load.
    const victim = nodes[1] as FaultNode;
    const online = join(cluster.root, 'node-2.snapshot');
    const created = await runFastpaca(['snapshot', 'create', '--url', victim.base, '--out', online], 60_000);
    expect(created.code, created.stderr).toBe(0);
    const copy = join(cluster.root, 'node-2-volume-snapshot');
    victim.sigstop();
    try {
      cpSync(victim.dataDir, copy, { recursive: true });
    } finally {
      victim.sigcont();
    }
    // It runs on (voting, acknowledging) long enough for later generations to be recorded.
    await sleep(3 * generationIntervalMs);
    await victim.kill();
    rmSync(victim.dataDir, { recursive: true, force: true });
    cpSync(copy, victim.dataDir, { recursive: true });
    victim.start();
    const exit = await Promise.race([victim.exited(), sleep(30_000).then(() => 'still running' as const)]);
    expect(exit, victim.output().slice(-3_000)).toMatchObject({ code: 2 });
    const log = victim.output();
    expect(log).toContain('older copy');
    expect(log).toContain('fastpaca cluster remove node-2');

    // The online snapshot restored onto it is refused too: it is a new incarnation holding replicas.
    const restored = await runFastpaca(
      ['snapshot', 'restore', online, '--data-dir', victim.dataDir, '--force'],
      60_000,
    );
    expect(restored.code, restored.stderr).toBe(0);
    victim.start();
    const second = await Promise.race([victim.exited(), sleep(30_000).then(() => 'still running' as const)]);
    expect(second, victim.output().slice(-3_000)).toMatchObject({ code: 2 });
    expect(victim.output()).toContain('knows node node-2 by another data directory');

    await sleep(2_000);
    const result = await workload.stop();
    const leadership = await sampler.stop();
    expect(result.unexpected).toEqual([]);
    expect(leadership.samples).toBeGreaterThan(10);
    expect(leadership.doubled).toEqual([]);
    const survivors = nodes.filter((node) => node !== victim);
    await finalCheck(survivors, contexts, recorder);
  }, 240_000);
});
