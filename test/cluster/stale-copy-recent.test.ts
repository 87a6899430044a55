// A stale copy too recent for the generation check (cluster/membership/acknowledged-entries.ts).
// Three real nodes under a recorded append load, with every node's view of every group's (term,
// leader) sampled throughout:
//   - Nodes SIGKILLed and restarted on their own data (crashes) are never refused by the leaders'
//     word: a follower acknowledges only after its fsync, so no leader's match for it exceeds what
//     it persisted. Each restart compared groups with the leaders, or logged that no peer answered
//     in time (the check then proves nothing and the node starts); at least one compared, and each
//     that compared fenced its votes at the peers' terms and at the entries they know committed.
//   - A volume snapshot of a member (SIGSTOP, copy its data directory, SIGCONT) taken right after it
//     recorded a generation, and restored onto it about 1.5 s later (well within the 5 s generation
//     interval, so the copy's generation is the recorded one and the generation check alone lets it
//     start): the leaders saw it acknowledge entries the copy lacks, so it refuses to start (exit
//     2) with a message naming the fix, before its replicas vote or acknowledge anything. The other
//     two keep taking writes; started again on its real directory (the fix) it rejoins; nothing
//     acknowledged is lost and no group ever had two leaders in one term.

import { cpSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { generationFileName, generationIntervalMs } from '../../src/cluster/membership/generation.js';
import { eventually, outputSince, sleep, waitReady } from './cluster-harness.js';
import { startLeaderSampler } from './leader-sampler.js';
import type { FaultCluster, FaultNode } from '../fault/processes.js';
import { stopAll } from '../fault/processes.js';
import { Recorder } from '../fault/recorder.js';
import { finalCheck, setUpContexts, startFaultCluster } from '../fault/scenario-kit.js';
import { startWorkload } from '../fault/workload.js';

const generationOf = (dataDir: string): string =>
  readFileSync(join(dataDir, generationFileName), 'utf8').trim();

/**
 * What the acknowledged check of one start logged in `text`: the groups it compared, or that it was
 * skipped because no peer answered in time (the check's documented behaviour: no answer proves
 * nothing, the node starts and says so), or nothing at all (undefined).
 */
const acknowledgedCheck = (text: string): number | 'skipped' | undefined => {
  const lines = text.split('\n');
  const line = lines.find((entry) => entry.includes('"type":"acknowledged_check"'));
  const match = line === undefined ? null : /"groupsCompared":(\d+)/.exec(line);
  if (match !== null) return Number(match[1]);
  const skipped = lines.some(
    (entry) =>
      entry.includes('"type":"acknowledged_check_skipped"') || entry.includes('"type":"stale_check_skipped"'),
  );
  return skipped ? 'skipped' : undefined;
};

describe('a stale copy taken within one generation interval, restored under load', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  const recorder = new Recorder();

  beforeAll(async () => {
    // Info level: each restart's acknowledged_check line says how many groups it compared.
    cluster = await startFaultCluster({ FASTPACA_LOG_LEVEL: 'info' }, false);
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'recent');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  it('crashed nodes restart; a copy the generation cannot see is refused by the leaders; nothing acknowledged lost', async () => {
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

    // Crashes under load are never refused. Each restart compared groups with their leaders, or
    // logged that no peer answered within its wait (on a 2-core host under this load a peer's loop
    // can stall for a second); the refusal below proves the comparison itself.
    const compared: (number | 'skipped' | undefined)[] = [];
    for (const crashed of [nodes[0], nodes[2], nodes[0]] as FaultNode[]) {
      const before = crashed.output();
      await crashed.kill();
      crashed.start();
      // Read the check's line as soon as it is logged: the output kept is a rolling 64 KiB, which a
      // node under load at info level can overrun before it is ready.
      let check: number | 'skipped' | undefined;
      await eventually('the restarted node logs its acknowledged check', 60_000, async () => {
        check = acknowledgedCheck(outputSince(before, crashed.output()));
        return Promise.resolve(check !== undefined || !crashed.alive());
      }).catch(() => undefined);
      // A restart that heard from its peers fences its votes up to their terms (RawNode.fenceVotes)
      // and at the entries they know committed (RawNode.fenceLog).
      if (typeof check === 'number') {
        await eventually('the restarted node fences its votes', 30_000, async () =>
          Promise.resolve(outputSince(before, crashed.output()).includes('"type":"vote_fence"')),
        );
        await eventually('the restarted node fences its votes at the peers’ commits', 30_000, async () =>
          Promise.resolve(outputSince(before, crashed.output()).includes('"type":"log_fence"')),
        );
      }
      await waitReady(nodes, 60_000);
      expect(crashed.alive(), crashed.output().slice(-3_000)).toBe(true);
      expect(outputSince(before, crashed.output())).not.toContain('has forgotten log entries');
      compared.push(check);
      await sleep(1_000);
    }
    expect(compared, 'every restart logs its acknowledged check or why it skipped it').not.toContain(
      undefined,
    );
    const counts = compared.filter((count): count is number => typeof count === 'number');
    expect(Math.max(0, ...counts), compared.join(',')).toBeGreaterThan(0);

    // A volume snapshot right after the victim recorded a generation: the next comes 5 s later.
    const victim = nodes[1] as FaultNode;
    const copy = join(cluster.root, 'node-2-recent-copy');
    const current = join(cluster.root, 'node-2-current');
    const recorded = generationOf(victim.dataDir);
    await eventually('node-2 records a new generation', 3 * generationIntervalMs, async () =>
      Promise.resolve(generationOf(victim.dataDir) !== recorded),
    );
    victim.sigstop();
    try {
      cpSync(victim.dataDir, copy, { recursive: true });
    } finally {
      victim.sigcont();
    }
    // It acknowledges more appends, but records no later generation before it dies.
    await sleep(1_500);
    await victim.kill();
    expect(generationOf(victim.dataDir), 'the copy must be invisible to the generation check').toBe(
      generationOf(copy),
    );
    renameSync(victim.dataDir, current);
    cpSync(copy, victim.dataDir, { recursive: true });
    const before = victim.output();
    victim.start();
    const exit = await Promise.race([victim.exited(), sleep(30_000).then(() => 'still running' as const)]);
    const log = outputSince(before, victim.output());
    expect(exit, log.slice(-3_000)).toMatchObject({ code: 2 });
    // Not the generation check's refusal (staleCopyError), which would name the recorded generation.
    expect(log).not.toContain('the cluster recorded');
    expect(log).toContain('has forgotten log entries node node-2 acknowledged as durable');
    expect(log).toContain('fastpaca cluster remove node-2');

    // The fix the message names: start it on its current data directory. It rejoins.
    rmSync(victim.dataDir, { recursive: true, force: true });
    renameSync(current, victim.dataDir);
    victim.start();
    await waitReady(nodes, 60_000);

    await sleep(2_000);
    const result = await workload.stop();
    const leadership = await sampler.stop();
    expect(result.unexpected).toEqual([]);
    expect(leadership.samples).toBeGreaterThan(10);
    expect(leadership.doubled).toEqual([]);
    await finalCheck(nodes, contexts, recorder);
  }, 300_000);
});
