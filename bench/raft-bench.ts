// The Raft benchmark: durable proposals per second and their latency, with real LevelDB (sync) and,
// for the replicated case, real gRPC between processes on 127.0.0.1.
//   single      one process (this one), 256 single-member groups, proposals made in-process
//   replicated  three processes (dist/bench/raft-process/main.js), 256 groups replicated 3 ways, leaders
//               spread evenly; each process drives closed-loop proposals to the groups it leads, with
//               the total concurrency split by the number of groups each leads
// A proposal counts when propose() resolved ok: committed by a quorum's fsync and applied on the
// leader. ~300-byte entries. Each scenario prints per-run numbers and the median of --runs runs; the
// last line is one JSON object whose top-level fields are the replicated scenario at the first
// concurrency (the target: >= 10,000 ops/s with p99 <= 30 ms on two cores).
//   npm run bench:raft -- [--duration-ms 5000] [--runs 3] [--concurrency 64,256] [--groups 256]
//                         [--entry-bytes 300] [--scenarios single,replicated] [--profile-dir DIR]

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { GroupId, NodeId, RaftHostStats } from '../raft/index.js';
import { launchRaftProcess, type LaunchedProcess } from './raft-process/launcher.js';
import { runLoad, type LoadResult } from './raft-process/load.js';
import { defaultLimits, startRaftNode, type NodeStatus } from './raft-process/raft-node.js';
import { median, newLatencyHistogram, percentileMs, round } from './stats.js';

interface BenchOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly runs: number;
  readonly concurrency: readonly number[];
  readonly groups: number;
  readonly entryBytes: number;
  readonly scenarios: readonly string[];
  readonly profileDir: string | undefined;
}

interface RunNumbers {
  readonly ops_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly fsyncs_per_s: number;
  readonly failures: number;
}

interface ScenarioResult extends RunNumbers {
  readonly scenario: string;
  readonly concurrency: number;
  readonly runs: readonly RunNumbers[];
}

const MEMBERS: readonly NodeId[] = ['a', 'b', 'c'];
const TICK_MS = 100;
const PROPOSE_TIMEOUT_MS = 10_000;

const parseOptions = (): BenchOptions => {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1500' },
      runs: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '64,256' },
      groups: { type: 'string', default: '256' },
      'entry-bytes': { type: 'string', default: '300' },
      scenarios: { type: 'string', default: 'single,replicated' },
      'profile-dir': { type: 'string' },
    },
  });
  const positive = (name: string, raw: string): number => {
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
    return value;
  };
  return {
    durationMs: positive('duration-ms', values['duration-ms']),
    warmupMs: Number(values['warmup-ms']),
    runs: positive('runs', values.runs),
    concurrency: values.concurrency.split(',').map((item) => positive('concurrency', item)),
    groups: positive('groups', values.groups),
    entryBytes: positive('entry-bytes', values['entry-bytes']),
    scenarios: values.scenarios.split(','),
    profileDir: values['profile-dir'],
  };
};

const summarize = (
  samples: readonly Uint32Array[],
  ok: number,
  elapsedMs: number,
  fsyncs: number,
  failures: number,
): RunNumbers => {
  const histogram = newLatencyHistogram();
  // Samples are microseconds; the shared histogram helpers read nanoseconds.
  for (const list of samples) for (const micros of list) histogram.record(micros * 1000);
  const seconds = elapsedMs / 1000;
  return {
    ops_per_s: round(ok / seconds, 0),
    p50_ms: percentileMs(histogram, 50),
    p99_ms: percentileMs(histogram, 99),
    fsyncs_per_s: round(fsyncs / seconds, 0),
    failures,
  };
};

const failureCount = (result: Pick<LoadResult, 'failures'>): number =>
  Object.values(result.failures).reduce((sum, count) => sum + count, 0);

const medianRun = (scenario: string, concurrency: number, runs: readonly RunNumbers[]): ScenarioResult => ({
  scenario,
  concurrency,
  ops_per_s: median(runs.map((run) => run.ops_per_s)),
  p50_ms: median(runs.map((run) => run.p50_ms)),
  p99_ms: median(runs.map((run) => run.p99_ms)),
  fsyncs_per_s: median(runs.map((run) => run.fsyncs_per_s)),
  failures: median(runs.map((run) => run.failures)),
  runs,
});

const printRun = (label: string, run: RunNumbers): void => {
  console.log(
    `  ${label}: ${run.ops_per_s} ops/s  p50 ${run.p50_ms} ms  p99 ${run.p99_ms} ms  ` +
      `fsyncs ${run.fsyncs_per_s}/s  failures ${run.failures}`,
  );
};

const waitUntil = async (
  what: string,
  done: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

// ---------------------------------------------------------------------------------------------
// (a) One process, single-member groups, proposals made in this process.

const benchSingle = async (options: BenchOptions, concurrency: number): Promise<ScenarioResult> => {
  const dir = mkdtempSync(join(tmpdir(), 'fastpaca-raft-bench-'));
  const fatal: Error[] = [];
  const node = await startRaftNode({
    nodeId: 'solo',
    dataDir: dir,
    raftPort: 0,
    clusterSecret: randomBytes(16).toString('hex'),
    groups: options.groups,
    members: ['solo'],
    peers: new Map(),
    tickMs: TICK_MS,
    electionTicks: 10,
    heartbeatTicks: 1,
    reconnectBackoffMs: { initial: 100, max: 5_000 },
    limits: defaultLimits,
    onFatal: (error) => fatal.push(error),
  });
  try {
    await waitUntil('single-member leaders', () => node.ledGroups().length === options.groups, 30_000);
    const groups = node.ledGroups();
    const load = { concurrency, entryBytes: options.entryBytes, timeoutMs: PROPOSE_TIMEOUT_MS };
    if (options.warmupMs > 0) await runLoad(node.host, groups, { ...load, durationMs: options.warmupMs });
    const runs: RunNumbers[] = [];
    for (let run = 0; run < options.runs; run += 1) {
      const before = node.host.stats();
      const result = await runLoad(node.host, groups, { ...load, durationMs: options.durationMs });
      const fsyncs = node.host.stats().syncedWrites - before.syncedWrites;
      const numbers = summarize(
        [result.latenciesUs],
        result.ok,
        result.elapsedMs,
        fsyncs,
        failureCount(result),
      );
      printRun(`single c=${concurrency} run ${run + 1}`, numbers);
      runs.push(numbers);
    }
    const [firstFatal] = fatal;
    if (firstFatal !== undefined) throw firstFatal;
    return medianRun('single', concurrency, runs);
  } finally {
    await node.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

// ---------------------------------------------------------------------------------------------
// (b) Three processes, every group replicated three ways.

interface RemoteLoad {
  readonly ok: number;
  readonly failures: Record<string, number>;
  readonly elapsedMs: number;
  readonly latenciesUs: string;
}

const control = async <T>(
  node: LaunchedProcess,
  method: 'GET' | 'POST',
  path: string,
  body?: string,
): Promise<T> => {
  const response = await fetch(`${node.controlUrl}${path}`, {
    method,
    ...(body !== undefined ? { body } : {}),
    signal: AbortSignal.timeout(120_000),
  });
  if (!response.ok) throw new Error(`${node.id} ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
};

const statusOf = (node: LaunchedProcess): Promise<NodeStatus> => control<NodeStatus>(node, 'GET', '/status');

const leadersByGroup = async (nodes: readonly LaunchedProcess[]): Promise<Map<GroupId, LaunchedProcess>> => {
  const leaders = new Map<GroupId, LaunchedProcess>();
  for (const node of nodes) {
    for (const group of (await statusOf(node)).groups) {
      if (group.role === 'leader') leaders.set(group.group, node);
    }
  }
  return leaders;
};

/** Moves leadership so group g is led by MEMBERS[g % 3]: each process gets a third of the load. */
const spreadLeaders = async (nodes: readonly LaunchedProcess[], groups: number): Promise<void> => {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const misplaced = async (): Promise<[GroupId, LaunchedProcess, NodeId][]> => {
    const leaders = await leadersByGroup(nodes);
    const moves: [GroupId, LaunchedProcess, NodeId][] = [];
    for (let group = 0; group < groups; group += 1) {
      const want = MEMBERS[group % MEMBERS.length] as NodeId;
      const current = leaders.get(group);
      if (current !== undefined && current.id !== want && byId.has(want)) moves.push([group, current, want]);
    }
    return moves;
  };
  await waitUntil(
    'leaders spread over the three processes',
    async () => {
      const moves = await misplaced();
      for (const [group, current, want] of moves) {
        await control(current, 'POST', `/transfer?group=${group}&to=${want}`);
      }
      return moves.length === 0;
    },
    30_000,
  );
};

const startCluster = async (
  options: BenchOptions,
  root: string,
  running: LaunchedProcess[],
): Promise<void> => {
  const secret = randomBytes(16).toString('hex');
  const pending = MEMBERS.map((id) => {
    const spawned = launchRaftProcess({
      id,
      dataDir: join(root, id),
      members: MEMBERS,
      groups: options.groups,
      secret,
      args: ['--tick-ms', String(TICK_MS)],
      stderr: 'inherit',
      ...(options.profileDir !== undefined
        ? {
            nodeArgs: [
              '--cpu-prof',
              '--cpu-prof-dir',
              options.profileDir,
              '--cpu-prof-name',
              `raft-${id}.cpuprofile`,
            ],
          }
        : {}),
    });
    return spawned.ready.then((node) => {
      running.push(node);
      return node;
    });
  });
  const nodes = await Promise.all(pending);
  const peers = JSON.stringify(Object.fromEntries(nodes.map((node) => [node.id, node.raftAddress])));
  for (const node of nodes) await control(node, 'POST', '/peers', peers);
  await waitUntil(
    'a leader for every group',
    async () => (await leadersByGroup(nodes)).size === options.groups,
    60_000,
  );
  await spreadLeaders(nodes, options.groups);
};

const runReplicated = async (
  nodes: readonly LaunchedProcess[],
  options: BenchOptions,
  concurrency: number,
  durationMs: number,
): Promise<RunNumbers> => {
  const leaders = await leadersByGroup(nodes);
  const before = await Promise.all(nodes.map((node) => statusOf(node)));
  const results = await Promise.all(
    nodes.map((node) => {
      const led = [...leaders.values()].filter((leader) => leader === node).length;
      const share = Math.max(led === 0 ? 0 : 1, Math.round((concurrency * led) / options.groups));
      const query = `durationMs=${durationMs}&concurrency=${share}&entryBytes=${options.entryBytes}&timeoutMs=${PROPOSE_TIMEOUT_MS}`;
      return control<RemoteLoad>(node, 'POST', `/load?${query}`);
    }),
  );
  const after = await Promise.all(nodes.map((node) => statusOf(node)));
  const delta = (key: keyof RaftHostStats): number =>
    after.reduce((sum, status, i) => sum + status.host[key] - (before[i]?.host[key] ?? 0), 0);
  const samples = results.map((result) => {
    const bytes = Buffer.from(result.latenciesUs, 'base64');
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  });
  const ok = results.reduce((sum, result) => sum + result.ok, 0);
  const elapsedMs = Math.max(...results.map((result) => result.elapsedMs));
  const failures = results.reduce((sum, result) => sum + failureCount(result), 0);
  // fsyncs of the whole cluster (three LevelDBs on one disk), per second.
  return summarize(samples, ok, elapsedMs, delta('syncedWrites'), failures);
};

const benchReplicated = async (options: BenchOptions): Promise<ScenarioResult[]> => {
  const root = mkdtempSync(join(tmpdir(), 'fastpaca-raft-bench-'));
  const running: LaunchedProcess[] = [];
  const cleanup = (): void => {
    for (const node of running) if (node.alive()) process.kill(node.pid, 'SIGKILL');
  };
  process.once('exit', cleanup);
  try {
    await startCluster(options, root, running);
    const nodes = [...running].sort((a, b) => a.id.localeCompare(b.id));
    const results: ScenarioResult[] = [];
    for (const concurrency of options.concurrency) {
      if (options.warmupMs > 0) await runReplicated(nodes, options, concurrency, options.warmupMs);
      const runs: RunNumbers[] = [];
      for (let run = 0; run < options.runs; run += 1) {
        // Leadership may have moved under load (an election timeout on a starved process): re-spread.
        await spreadLeaders(nodes, options.groups);
        const numbers = await runReplicated(nodes, options, concurrency, options.durationMs);
        printRun(`replicated c=${concurrency} run ${run + 1}`, numbers);
        runs.push(numbers);
      }
      results.push(medianRun('replicated', concurrency, runs));
    }
    return results;
  } finally {
    // SIGTERM (graceful: lets --cpu-prof write its profile), SIGKILL after the grace period.
    await Promise.all(running.map((node) => node.stop(10_000)));
    process.removeListener('exit', cleanup);
    rmSync(root, { recursive: true, force: true });
  }
};

// ---------------------------------------------------------------------------------------------

const main = async (): Promise<void> => {
  const options = parseOptions();
  console.log(
    `raft bench: ${options.groups} groups, ${options.entryBytes}-byte entries, ${options.runs} runs of ` +
      `${options.durationMs} ms, concurrency ${options.concurrency.join('/')}, LevelDB sync on`,
  );
  const results: ScenarioResult[] = [];
  if (options.scenarios.includes('single')) {
    for (const concurrency of options.concurrency) results.push(await benchSingle(options, concurrency));
  }
  if (options.scenarios.includes('replicated')) results.push(...(await benchReplicated(options)));

  console.log('\nmedians:');
  for (const result of results) printRun(`${result.scenario} c=${result.concurrency}`, result);
  const headline =
    results.find((result) => result.scenario === 'replicated') ?? results[0] ?? medianRun('none', 0, []);
  const { runs: _runs, ...headlineNumbers } = headline;
  console.log(
    JSON.stringify({
      ...headlineNumbers,
      scenarios: results.map(({ runs: _ignored, ...numbers }) => numbers),
    }),
  );
};

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
