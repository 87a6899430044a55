// Lost answers, a failing fsync and a torn log tail, on three real nodes under a recorded workload.
//   - Ambiguous acks: a proxy in front of every node's HTTP port resets a quarter of the answers'
//     connections, after the append committed; writers retry with the same Idempotency-Key, and the
//     checker finds every acknowledged append exactly once (zero duplicates).
//   - fsync failure: one node restarts with FASTPACA_FAULT_FSYNC_FAIL_AFTER (its synced writes fail
//     after a while, as an EIO from fsync would); it must exit, the others keep taking writes, and
//     it catches up after a clean restart.
//   - Torn tail: a follower is SIGKILLed mid-stream and its newest LevelDB log file gets a torn last
//     record (a write that never completed: a header promising more bytes than follow, garbage
//     after), then a whole record cut short; each time it must either recover a valid prefix
//     (ready, caught up, identical to the others) or refuse to start with a clear message.

import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { crc32c } from '../../raft/storage/leveldb-log-tail.js';
import { eventually, sleep, waitReady } from '../cluster/cluster-harness.js';
import type { FaultCluster, FaultNode } from './processes.js';
import { stopAll } from './processes.js';
import { Recorder, describeCounts, isAck } from './recorder.js';
import { budgetMs, faultMs, finalCheck, setUpContexts, startFaultCluster } from './scenario-kit.js';
import { probeWritable, startWorkload, type Target } from './workload.js';

const WRITABLE_MS_MAX = 10_000;
const LOG_BLOCK_BYTES = 32 * 1024;
const LOG_HEADER_BYTES = 7;

/** One full LevelDB log record: masked CRC-32C of type and payload, length, type 1 (full), payload. */
const levelLogRecord = (payload: Buffer): Buffer => {
  const body = Buffer.concat([Buffer.from([1]), payload]);
  const crc = crc32c(body, 0, body.length);
  const masked = (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
  const header = Buffer.alloc(6);
  header.writeUInt32LE(masked, 0);
  header.writeUInt16LE(payload.length, 4);
  return Buffer.concat([header, body]);
};

describe('lost answers, failed fsync, torn log tail', () => {
  let cluster: FaultCluster;
  let nodes: readonly FaultNode[];
  let contexts: string[];
  const recorder = new Recorder();

  beforeAll(async () => {
    cluster = await startFaultCluster();
    nodes = cluster.nodes;
    contexts = await setUpContexts(nodes, 12, 'crash');
  }, 150_000);

  afterAll(async () => {
    stopAll();
    await cluster?.destroy();
  });

  /** Writers and readers on the nodes still running, while one of them crashes and comes back. */
  const survivorsWorkload = () =>
    startWorkload({
      contexts,
      targets: () => nodes.filter((node) => node.alive()),
      writers: 4,
      readers: 2,
      recorder,
      writePauseMs: 5,
      readPauseMs: 20,
    });

  it(
    'answers lost after commit: retries with the same Idempotency-Key leave zero duplicates',
    async () => {
      const proxies = await Promise.all(nodes.map((_, i) => cluster.clientProxy(i)));
      for (const proxy of proxies) proxy.set({ down: { blocked: false, delayMs: 0, dropProbability: 0.25 } });
      const targets: Target[] = proxies.map((proxy, i) => ({
        name: `${nodes[i]?.name ?? ''} via lossy proxy`,
        base: `http://127.0.0.1:${proxy.port}`,
      }));
      const since = recorder.now();
      const workload = startWorkload({
        contexts,
        targets: () => targets,
        writers: 6,
        readers: 2,
        recorder,
        writePauseMs: 5,
        readPauseMs: 20,
      });
      await sleep(faultMs(5_000));
      const result = await workload.stop();
      for (const proxy of proxies) proxy.pass();
      const appends = recorder
        .history()
        .filter((event) => event.start >= since && event.op.kind === 'append');
      const lost = appends.filter((event) => event.status === 0).length;
      const replayed = appends.filter((event) => isAck(event) && event.observed?.replayed === true).length;
      const resets = proxies.reduce((sum, proxy) => sum + proxy.stats().resets, 0);
      console.log(
        `ambiguous acks: ${appends.length} append attempts, ${lost} answers lost (${resets} connections reset), ` +
          `${replayed} retries answered as replays; answers ${describeCounts(recorder.statusCounts(since))}; acked ${result.appendsAcked}`,
      );
      expect(result.unexpected).toEqual([]);
      expect(lost).toBeGreaterThan(10);
      expect(replayed).toBeGreaterThan(0);
      const report = await finalCheck(nodes, contexts, recorder);
      expect(report.violations.filter((v) => v.kind === 'duplicate')).toEqual([]);
    },
    budgetMs(5_000, 1, 60_000),
  );

  it(
    'a node whose fsync fails exits; the others keep taking writes; it recovers after a restart',
    async () => {
      const victim = nodes[2] as FaultNode;
      const others = nodes.filter((node) => node !== victim);
      expect(await victim.terminate()).toMatchObject({ code: 0 });
      // Enough synced writes to start and catch up, then every further one fails.
      victim.env['FASTPACA_FAULT_FSYNC_FAIL_AFTER'] = '150';
      victim.start();
      const workload = survivorsWorkload();
      try {
        const startedAt = recorder.now();
        const exit = await Promise.race([victim.exited(), sleep(60_000).then(() => undefined)]);
        const exitedAt = recorder.now();
        expect(exit, `${victim.name} did not exit:\n${victim.output().slice(-2_000)}`).toBeDefined();
        expect(exit).toMatchObject({ code: 1 });
        expect(victim.output()).toContain('fault injection: fsync failed');
        expect(victim.output()).toContain('raft storage failed; exiting');
        const writableMs = await probeWritable(
          recorder,
          contexts,
          () => others,
          exitedAt,
          WRITABLE_MS_MAX + 5_000,
        );
        await sleep(faultMs(3_000));
        const ackedWhileDown = recorder
          .history()
          .filter((event) => event.start >= exitedAt && isAck(event)).length;
        console.log(
          `fsync failure: ${victim.name} exited ${JSON.stringify(exit)} ${Math.round(exitedAt - startedAt)} ms after its start; ` +
            `writable through the others within ${writableMs} ms; ${ackedWhileDown} appends acknowledged while it was down`,
        );
        expect(writableMs).toBeLessThanOrEqual(WRITABLE_MS_MAX);
        expect(ackedWhileDown).toBeGreaterThan(20);
        delete victim.env['FASTPACA_FAULT_FSYNC_FAIL_AFTER'];
        victim.start();
        await waitReady([victim], 60_000);
        await sleep(1_000);
      } finally {
        const result = await workload.stop();
        expect(result.unexpected).toEqual([]);
      }
      await finalCheck(nodes, contexts, recorder);
    },
    budgetMs(3_000, 1, 120_000),
  );

  /** The newest LevelDB write-ahead log file of a node's store. */
  const newestLog = (node: FaultNode): string => {
    const dir = join(node.dataDir, 'store');
    const logs = readdirSync(dir)
      .filter((name) => name.endsWith('.log') && /^\d+\.log$/.test(name))
      .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    const last = logs.at(-1);
    if (last === undefined) throw new Error(`no .log file in ${dir}`);
    return join(dir, last);
  };

  /** SIGKILLs `victim` mid-stream, damages its log with `damage`, restarts it, asserts the outcome. */
  const tornTail = async (
    victim: FaultNode,
    label: string,
    damage: (file: string) => string,
  ): Promise<void> => {
    const workload = survivorsWorkload();
    try {
      await sleep(faultMs(2_000));
      await victim.kill();
      const file = newestLog(victim);
      const sizeBefore = statSync(file).size;
      const what = damage(file);
      await sleep(1_000);
      victim.start();
      // Either it comes up (a valid prefix recovered) or it exits with a clear message.
      const seen: { outcome: 'ready' | 'refused' } = { outcome: 'ready' };
      await eventually(`${victim.name} ready or refused`, 60_000, async () => {
        if (!victim.alive()) {
          seen.outcome = 'refused';
          return true;
        }
        const response = await fetch(`${victim.base}/health/ready`, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        return response.status === 200;
      });
      console.log(`torn tail (${label}): ${what} of ${file} (${sizeBefore} bytes): ${seen.outcome}`);
      if (seen.outcome === 'refused') {
        expect(victim.lastExit()?.code).not.toBe(0);
        expect(victim.output()).toMatch(/corrupt|checksum|torn/i);
        throw new Error(
          `${victim.name} refused to start after a torn tail:\n${victim.output().slice(-2_000)}`,
        );
      }
      // Recovered, and said what the crash cut short instead of dropping it silently.
      const warnings = victim
        .output()
        .split('\n')
        .filter((line) => line.includes('torn_log_tail'));
      expect(warnings.some((line) => line.includes(file))).toBe(true);
      await sleep(faultMs(1_000));
    } finally {
      const result = await workload.stop();
      expect(result.unexpected).toEqual([]);
    }
    await finalCheck(nodes, contexts, recorder);
  };

  it(
    'a follower with a torn last record in its log recovers a valid prefix',
    () =>
      tornTail(nodes[1] as FaultNode, 'partial record appended', (file) => {
        // A LevelDB log record header (crc32c, length, type FULL) promising 4000 bytes; 100 follow.
        const header = Buffer.from([0xde, 0xad, 0xbe, 0xef, 4000 & 0xff, 4000 >> 8, 1]);
        const fd = openSync(file, 'a');
        try {
          writeSync(fd, Buffer.concat([header, Buffer.alloc(100, 0x5a)]));
        } finally {
          closeSync(fd);
        }
        return 'appended a 107-byte torn record';
      }),
    budgetMs(2_000, 2, 120_000),
  );

  it(
    'a follower whose log ends in a record cut short recovers a valid prefix',
    () =>
      tornTail(nodes[1] as FaultNode, 'last record cut', (file) => {
        // What a power loss leaves of a write never synced: a whole record (valid checksum) after the
        // last synced one, cut through. Cutting a synced record instead would be a disk losing a
        // write the node acknowledged, which it rightly refuses to start with once a leader holds
        // that acknowledgement (acknowledged-entries.ts).
        const size = statSync(file).size;
        const payload = Buffer.alloc(200, 0x5a);
        const leftInBlock = LOG_BLOCK_BYTES - (size % LOG_BLOCK_BYTES);
        // A record never starts in a block's last 6 bytes: LevelDB pads them with zeros.
        const padding = Buffer.alloc(leftInBlock < LOG_HEADER_BYTES + payload.length ? leftInBlock : 0);
        const record = levelLogRecord(payload);
        const cut = 37;
        const fd = openSync(file, 'a');
        try {
          writeSync(fd, Buffer.concat([padding, record.subarray(0, record.length - cut)]));
        } finally {
          closeSync(fd);
        }
        return `appended a ${record.length}-byte record cut ${cut} bytes short`;
      }),
    budgetMs(2_000, 2, 120_000),
  );
});
