// `fastpaca bench cluster` (also `npm run bench:cluster`), the three-node cluster benchmark (issue 4,
// "How fast"): three real nodes on 127.0.0.1 sharing this
// machine with the load generator. 32 connections each append ~300-byte messages to their own
// context, (a) spread round-robin over the three nodes, (b) all pinned to one node; medians of
// --runs x --duration. Then (c) under the same load, the node leading the most groups is SIGKILLed
// and we time how long until one sample context in every group has accepted an append again.
// Run: fastpaca bench cluster [--duration 10] [--runs 3] [--connections 32] [--round-robin-only]
// [--rate N] [--node-env NAME=VALUE ...] [--node-arg=--v8-flag ...] [--profile-dir DIR (a V8 CPU
// profile per node, written when it stops)]. It starts its own nodes (CPU accounting and profiles
// need them) and records the round-robin runs' latencies for the report's plot.
// Every process started here is stopped by pid at the end, also on failure.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from '../local-nodes.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultGroupCount, groupOf } from '../../src/context/routing.js';
import { RawHttpConnection } from '../raw-http.js';
import type { LatencyRecorder } from '../recorder.js';
import type { Scenario, ScenarioResult } from '../scenario.js';
import { fastpacaCommand } from '../self-command.js';
import {
  medianOfRuns,
  newLatencyHistogram,
  percentileMs,
  recordSince,
  round,
  type RunResult,
} from '../stats.js';

const secret = 'cluster-bench-secret-0123456789';
const secretHeader = 'x-fastpaca-cluster-secret';
const jsonHeaders = { 'content-type': 'application/json' };

interface BenchNode {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  alive(): boolean;
  /** SIGKILL by default; SIGTERM lets a profiled node write its profile (SIGKILL after 10 s). */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

/** The environment a node gets: ours minus any FASTPACA_* the developer has set, plus the cluster. */
const nodeEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('FASTPACA_') && name !== 'PORT') env[name] = value;
  }
  return {
    ...env,
    FASTPACA_LOG_LEVEL: 'warn',
    // Three nodes and the load generator share two cores: one tokenizer worker per node.
    FASTPACA_TOKEN_ESTIMATOR: 'chars4',
    FASTPACA_TOKENIZER_WORKERS: '1',
    ...extra,
  };
};

const startCluster = async (
  root: string,
  extraEnv: Readonly<Record<string, string>>,
  profileDir: string | undefined,
  nodeArgs: readonly string[],
): Promise<BenchNode[]> => {
  const ports: { http: number; raft: number }[] = [];
  for (let i = 0; i < 3; i++) ports.push({ http: await freePort(), raft: await freePort() });
  const seed = ports.map(({ http }) => `127.0.0.1:${http}`).join(',');
  return ports.map(({ http, raft }, i) => {
    const name = `node-${i + 1}`;
    const profile = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
    const [program, ...programArgs] = fastpacaCommand();
    const args = [...nodeArgs, ...profile, ...programArgs, 'serve', '--host', '127.0.0.1'];
    args.push('--port', String(http), '--raft-port', String(raft), '--data-dir', join(root, name));
    const child = spawn(program as string, args, {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: nodeEnv({
        FASTPACA_CLUSTER_SEED: seed,
        FASTPACA_CLUSTER_SECRET: secret,
        FASTPACA_NODE_NAME: name,
        ...extraEnv,
      }),
    });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    const alive = (): boolean => child.exitCode === null && child.signalCode === null;
    return {
      name,
      url: `http://127.0.0.1:${http}`,
      child,
      alive,
      kill: async (signal = 'SIGKILL') => {
        if (child.pid === undefined || !alive()) return;
        process.kill(child.pid, signal);
        await Promise.race([exited, sleep(10_000)]);
        if (alive()) process.kill(child.pid, 'SIGKILL');
      },
    };
  });
};

const waitReady = async (nodes: readonly BenchNode[], timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      if (!node.alive()) throw new Error(`${node.name} exited before it was ready`);
      try {
        const response = await fetch(`${node.url}/health/ready`, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        if (response.status === 200) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`${node.name} not ready within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
};

interface GroupStatus {
  readonly group: number;
  readonly leader: string | null;
  readonly term: number;
}

const groupStatuses = async (node: BenchNode): Promise<readonly GroupStatus[]> => {
  const response = await fetch(`${node.url}/internal/v1/cluster/status`, {
    headers: { [secretHeader]: secret },
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 200) throw new Error(`cluster status of ${node.name}: HTTP ${response.status}`);
  return ((await response.json()) as { groups: readonly GroupStatus[] }).groups;
};

const leaderCounts = async (node: BenchNode): Promise<Map<string, number>> => {
  const counts = new Map<string, number>();
  for (const { leader } of await groupStatuses(node))
    if (leader !== null) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  return counts;
};

/** Waits (bounded) until every node leads within ±10 % of an even share; the time it took, if it did. */
const waitLeadersBalanced = async (node: BenchNode, timeoutMs: number): Promise<number | undefined> => {
  const startedMs = performance.now();
  const even = defaultGroupCount / 3;
  while (performance.now() - startedMs < timeoutMs) {
    const counts = [...(await leaderCounts(node)).values()];
    const balanced = counts.length === 3 && counts.every((count) => Math.abs(count - even) <= 0.1 * even);
    if (balanced) return round(performance.now() - startedMs, 0);
    await sleep(250);
  }
  return undefined;
};

const words =
  'the quick brown fox jumps over a lazy dog while models read context windows of chat history'.split(' ');

/** Deterministic English-like text of about `bytes` bytes (as bench/append-load.ts makes it). */
const messageText = (bytes: number, client: number, n: number): string => {
  let text = `client ${client} message ${n}:`;
  for (let i = 0; text.length < bytes; i++) text += ` ${words[(client * 7 + n * 3 + i) % words.length]}`;
  return text.slice(0, bytes);
};

const appendBody = (client: number, n: number): string =>
  JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text: messageText(300, client, n) }] } });

const createContext = async (url: string, id: string): Promise<void> => {
  const body = JSON.stringify({
    token_budget: 1_000_000,
    policy: { strategy: 'last_n', config: { limit: 200 } },
  });
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${url}/v1/contexts/${encodeURIComponent(id)}`, {
      method: 'PUT',
      headers: jsonHeaders,
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    if (response.status < 300) return;
    if (attempt >= 20) throw new Error(`PUT ${id}: HTTP ${response.status}`);
    await sleep(100);
  }
};

interface LoadOptions {
  readonly connections: number;
  readonly durationMs: number;
  readonly runId: string;
  /** The node connection `index` sends to (re-asked after a connection fails). */
  readonly target: (index: number) => BenchNode | undefined;
  readonly stop?: () => boolean;
  /** Appends per second over all connections (open loop); unset: each connection sends back to back. */
  readonly rate?: number;
  /** Also receives every acknowledged append's latency (for the report's plot). */
  readonly recorder?: LatencyRecorder;
}

/** One keep-alive connection per client, each appending to its own context until the deadline. */
const runLoad = async (options: LoadOptions): Promise<RunResult> => {
  const ids = Array.from({ length: options.connections }, (_, i) => `cb-${options.runId}-${i}`);
  await Promise.all(ids.map((id, i) => createContext(options.target(i)?.url ?? '', id)));
  const histogram = newLatencyHistogram();
  let ok = 0;
  let errors = 0;
  const startedMs = performance.now();
  const deadlineMs = startedMs + options.durationMs;
  const running = (): boolean => performance.now() < deadlineMs && !(options.stop?.() ?? false);
  const client = async (index: number): Promise<void> => {
    const path = `/v1/contexts/${encodeURIComponent(ids[index]!)}/messages`;
    let connection: RawHttpConnection | undefined;
    try {
      // At a fixed rate, connection `index` sends at its own evenly spaced instants.
      const intervalMs = options.rate === undefined ? 0 : (options.connections * 1000) / options.rate;
      let sendAtMs = startedMs + (intervalMs * index) / options.connections;
      for (let n = 0; running(); n++) {
        if (intervalMs > 0) {
          const waitMs = sendAtMs - performance.now();
          if (waitMs > 0) await sleep(waitMs);
          sendAtMs += intervalMs;
          if (!running()) break;
          // The server closes a keep-alive connection idle for long: that is no failed append.
          if (connection?.usable === false) connection = undefined;
        }
        const start = process.hrtime.bigint();
        try {
          if (connection === undefined) {
            const node = options.target(index);
            if (node === undefined) throw new Error('no live node');
            connection = await RawHttpConnection.open(node.url);
          }
          const response = await connection.request('POST', path, jsonHeaders, appendBody(index, n));
          if (response.status === 201 && /"seq":\d+/.test(response.body)) {
            ok++;
            recordSince(histogram, start);
            options.recorder?.record('append', Number(process.hrtime.bigint() - start));
          } else {
            errors++;
          }
        } catch {
          errors++;
          connection?.close();
          connection = undefined;
          await sleep(10);
        }
      }
    } finally {
      connection?.close();
    }
  };
  await Promise.all(ids.map((_, i) => client(i)));
  const elapsedS = (performance.now() - startedMs) / 1000;
  return {
    ops_per_s: round(ok / elapsedS, 0),
    p50_ms: percentileMs(histogram, 50),
    p99_ms: percentileMs(histogram, 99),
    errors,
  };
};

/** One context id per group, so a write to each proves every group has a working leader. */
const oneContextPerGroup = (prefix: string): string[] => {
  const byGroup = new Map<number, string>();
  for (let i = 0; byGroup.size < defaultGroupCount && i < 1_000_000; i++) {
    const id = `${prefix}-${i}`;
    const group = groupOf(id);
    if (!byGroup.has(group)) byGroup.set(group, id);
  }
  return [...byGroup.values()];
};

interface FailoverResult {
  readonly failover_ms: number | null;
  readonly killed: string;
  readonly recovered: number;
  readonly samples: number;
  /** Of the groups the killed node led: how many took one election to replace it, how many more. */
  readonly elections: { readonly oneRound: number; readonly moreRounds: number };
  readonly load: RunResult;
}

/**
 * Under round-robin load, SIGKILLs the node leading the most groups, then appends to every sample
 * context (retrying through the live nodes) until each has been acknowledged once. failover_ms is
 * the time from the kill to the last of those first acknowledgements.
 */
const measureFailover = async (nodes: readonly BenchNode[], connections: number): Promise<FailoverResult> => {
  const samples = oneContextPerGroup('failover');
  for (let i = 0; i < samples.length; i += 32) {
    await Promise.all(samples.slice(i, i + 32).map((id, j) => createContext(nodes[(i + j) % 3]!.url, id)));
  }
  const counts = await leaderCounts(nodes[0]!);
  const victim = [...nodes].sort((a, b) => (counts.get(b.name) ?? 0) - (counts.get(a.name) ?? 0))[0]!;
  const survivor = nodes.find((node) => node !== victim)!;
  const termsBefore = new Map((await groupStatuses(survivor)).map((view) => [view.group, view]));
  const live = (): BenchNode[] => nodes.filter((node) => node.alive());
  let stopLoad = false;
  let turn = 0;
  const load = runLoad({
    connections,
    durationMs: 120_000,
    runId: 'failover',
    target: (index) => {
      const candidates = live();
      return candidates[(index + turn++) % Math.max(1, candidates.length)];
    },
    stop: () => stopLoad,
  });
  await sleep(2_000);
  const killedAt = performance.now();
  await victim.kill();
  const limitMs = 60_000;
  const recoveredAt = await Promise.all(
    samples.map(async (id, index): Promise<number | undefined> => {
      for (let attempt = 0; performance.now() - killedAt < limitMs; attempt++) {
        const candidates = live();
        const node = candidates[(index + attempt) % candidates.length]!;
        try {
          const response = await fetch(`${node.url}/v1/contexts/${encodeURIComponent(id)}/messages`, {
            method: 'POST',
            headers: jsonHeaders,
            body: appendBody(index, attempt),
            signal: AbortSignal.timeout(5_000),
          });
          await response.arrayBuffer();
          if (response.status === 201) return performance.now();
        } catch {
          // Connection refused or timed out: try the next node.
        }
        await sleep(20);
      }
      return undefined;
    }),
  );
  stopLoad = true;
  const loadResult = await load;
  const recovered = recoveredAt.filter((at): at is number => at !== undefined);
  // A group whose term rose by more than one needed another election (e.g. a split vote).
  const elections = { oneRound: 0, moreRounds: 0 };
  for (const { group, term } of await groupStatuses(survivor)) {
    const before = termsBefore.get(group);
    if (before?.leader !== victim.name) continue;
    if (term - before.term <= 1) elections.oneRound++;
    else elections.moreRounds++;
  }
  return {
    failover_ms: recovered.length === samples.length ? round(Math.max(...recovered) - killedAt, 0) : null,
    killed: `${victim.name} (led ${counts.get(victim.name) ?? 0} of ${defaultGroupCount} groups)`,
    recovered: recovered.length,
    samples: samples.length,
    elections,
    load: loadResult,
  };
};

interface CpuSeconds {
  readonly user: number;
  readonly system: number;
}

/** CPU seconds a process has used (utime, stime from /proc, at the usual 100 ticks/s); 0 if gone. */
const cpuSeconds = (pid: number | undefined): CpuSeconds => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
};

/** Runs `work` and reports the CPU the nodes and this load generator used, in % of one core. */
const withCpu = async <T>(
  nodes: readonly BenchNode[],
  work: () => Promise<T>,
): Promise<[T, string, number]> => {
  const nodesBefore = nodes.map((node) => cpuSeconds(node.child.pid));
  const selfBefore = process.cpuUsage();
  const startedMs = performance.now();
  const result = await work();
  const elapsedS = (performance.now() - startedMs) / 1000;
  const perNode = nodes.map((node, i) => {
    const after = cpuSeconds(node.child.pid);
    const before = nodesBefore[i]!;
    return { user: (after.user - before.user) / elapsedS, system: (after.system - before.system) / elapsedS };
  });
  const self = process.cpuUsage(selfBefore);
  const selfShare = (self.user + self.system) / 1e6 / elapsedS;
  const percent = (share: number): string => `${Math.round(share * 100)}%`;
  const nodeShares = perNode.map((cpu) => `${percent(cpu.user + cpu.system)} (sys ${percent(cpu.system)})`);
  const nodesTotal = perNode.reduce((sum, cpu) => sum + cpu.user + cpu.system, 0);
  return [result, `cpu: nodes ${nodeShares.join(' / ')}, load generator ${percent(selfShare)}`, nodesTotal];
};

/** Counters from a node's /metrics that explain where a run's work went; zeros if it is gone. */
const raftCounters = async (node: BenchNode): Promise<Map<string, number>> => {
  const wanted = [
    'fastpaca_raft_turn_duration_seconds_count',
    'fastpaca_raft_turn_duration_seconds_sum',
    'fastpaca_raft_fsync_duration_seconds_count',
    'fastpaca_raft_fsync_duration_seconds_sum',
    'fastpaca_raft_fsyncs_total',
    'fastpaca_raft_messages_sent_total',
    'fastpaca_raft_frames_sent_total',
    'fastpaca_raft_entries_persisted_total',
  ];
  const counters = new Map<string, number>();
  if (!node.alive()) return counters;
  try {
    const response = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    for (const line of (await response.text()).split('\n')) {
      // `name{labels} value`: every series here carries a node label.
      const name = line.slice(0, line.search(/[{ ]/));
      if (wanted.includes(name)) counters.set(name, Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
  } catch {
    // Unreachable: report zeros.
  }
  return counters;
};

/**
 * Runs `work`; reports per node the turns, fsyncs, Raft messages and frames it took per acknowledged
 * append, and how much of the run each node's turn loop was busy and how long its fsyncs took: turns
 * never overlap, so a loop busy most of the time waiting on fsync bounds throughput by latency even
 * where cores are left idle.
 */
const withRaftActivity = async (
  nodes: readonly BenchNode[],
  work: () => Promise<[RunResult, string, number]>,
): Promise<[RunResult, string]> => {
  const before = await Promise.all(nodes.map(raftCounters));
  const startedMs = performance.now();
  const [result, cpu, nodeCores] = await work();
  const elapsedS = (performance.now() - startedMs) / 1000;
  const appends = result.ops_per_s * elapsedS;
  const after = await Promise.all(nodes.map(raftCounters));
  const delta = (i: number, name: string): number => (after[i]!.get(name) ?? 0) - (before[i]!.get(name) ?? 0);
  const per = (name: string): string =>
    nodes
      .map((_, i) => delta(i, name) / Math.max(1, appends))
      .map((value) => value.toFixed(2))
      .join(' / ');
  const turnBusy = nodes
    .map((_, i) => `${Math.round((100 * delta(i, 'fastpaca_raft_turn_duration_seconds_sum')) / elapsedS)}%`)
    .join(' / ');
  const fsyncMs = nodes
    .map((_, i) => {
      const count = delta(i, 'fastpaca_raft_fsync_duration_seconds_count');
      return ((1000 * delta(i, 'fastpaca_raft_fsync_duration_seconds_sum')) / Math.max(1, count)).toFixed(2);
    })
    .join(' / ');
  const cpuPerAppendUs = Math.round((nodeCores * 1e6) / Math.max(1, result.ops_per_s));
  const activity =
    `per append: node cpu ${cpuPerAppendUs} µs, turns ${per('fastpaca_raft_turn_duration_seconds_count')}, ` +
    `fsyncs ${per('fastpaca_raft_fsyncs_total')}, messages sent ${per('fastpaca_raft_messages_sent_total')}, frames sent ${per('fastpaca_raft_frames_sent_total')}; ` +
    `turn loop busy ${turnBusy}, fsync ${fsyncMs} ms`;
  return [result, `${cpu}; ${activity}`];
};

/** One counted load run, with the CPU and Raft activity it cost. */
const measuredRun = (nodes: readonly BenchNode[], load: LoadOptions): Promise<[RunResult, string]> =>
  withRaftActivity(nodes, () => withCpu(nodes, () => runLoad(load)));

const describeRun = (label: string, result: RunResult): string =>
  `${label}: ${result.ops_per_s} appends/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, errors ${result.errors}`;

export interface ClusterBenchOptions {
  readonly durationS: number;
  readonly runs: number;
  readonly connections: number;
  /** Extra node environment for experiments, e.g. FASTPACA_RAFT_TICK_MS=50. */
  readonly nodeEnv: readonly string[];
  /** Extra node (V8) flags for experiments, e.g. --single-threaded-gc. */
  readonly nodeArgs: readonly string[];
  readonly profileDir: string | undefined;
  /** For quick A/B comparisons: only the round-robin runs (no pinned runs, no failover). */
  readonly roundRobinOnly: boolean;
  /** Open loop at this many appends/s in total: with roundRobinOnly, compares CPU per append. */
  readonly rate: number | undefined;
}

export const runClusterBench = async (
  options: ClusterBenchOptions,
  recorder: LatencyRecorder,
  log: (line: string) => void,
): Promise<ScenarioResult> => {
  const console = { log };
  const values = {
    'profile-dir': options.profileDir,
    'node-arg': options.nodeArgs,
    'node-env': options.nodeEnv,
  };
  const roundRobinOnly = options.roundRobinOnly;
  const rate = options.rate;
  if (rate !== undefined && !(rate > 0)) throw new Error('--rate must be a positive number');
  const extraEnv: Record<string, string> = {};
  for (const pair of values['node-env']) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`--node-env ${pair}: expected NAME=VALUE`);
    extraEnv[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const durationMs = options.durationS * 1000;
  const runs = options.runs;
  const connections = options.connections;
  if (!(durationMs > 0) || !(runs >= 1) || !(connections >= 1)) {
    throw new Error('--duration, --runs and --connections must be positive numbers');
  }
  const root = mkdtempSync(join(tmpdir(), 'fastpaca-cluster-bench-'));
  let nodes: BenchNode[] = [];
  try {
    nodes = await startCluster(root, extraEnv, values['profile-dir'], values['node-arg']);
    if (Object.keys(extraEnv).length > 0) console.log(`node env: ${JSON.stringify(extraEnv)}`);
    if (values['node-arg'].length > 0) console.log(`node args: ${values['node-arg'].join(' ')}`);
    await waitReady(nodes, 60_000);
    console.log(`cluster ready: ${nodes.map((n) => `${n.name} ${n.url} pid ${n.child.pid}`).join(', ')}`);
    // Measure the steady state the issue describes (leaders within ±10 % of even), not the seconds
    // after formation while the balancer still moves groups off the nodes that won the first elections.
    const balancedAfterMs = await waitLeadersBalanced(nodes[0]!, 30_000);
    console.log(
      `leaders per node: ${JSON.stringify(Object.fromEntries(await leaderCounts(nodes[0]!)))} ` +
        (balancedAfterMs === undefined
          ? '(not within ±10 % of even after 30 s)'
          : `(within ±10 % of even ${balancedAfterMs} ms after ready)`),
    );
    // What the nodes burn with no client at all (heartbeats of every group), for comparison.
    const [, idleCpu] = await withCpu(nodes, () => sleep(2_000));
    console.log(`idle for 2 s: ${idleCpu}`);
    // One uncounted warm-up run, as the other benchmarks do (JIT, connections, forward streams).
    const warmup = await runLoad({
      connections,
      durationMs: Math.max(durationMs, 10_000),
      runId: 'warmup',
      target: (index) => nodes[index % nodes.length],
    });
    console.log(describeRun('warm-up (not counted)', warmup));
    const roundRobin: RunResult[] = [];
    const pinned: RunResult[] = [];
    for (let run = 0; run < runs; run++) {
      const [rr, rrCpu] = await measuredRun(nodes, {
        connections,
        durationMs,
        recorder,
        runId: `rr${run}`,
        target: (index) => nodes[index % nodes.length],
        ...(rate === undefined ? {} : { rate }),
      });
      roundRobin.push(rr);
      console.log(`${describeRun(`run ${run + 1} round-robin`, rr)}; ${rrCpu}`);
      console.log(`  leaders per node: ${JSON.stringify(Object.fromEntries(await leaderCounts(nodes[0]!)))}`);
      if (roundRobinOnly) continue;
      const [pin, pinCpu] = await measuredRun(nodes, {
        connections,
        durationMs,
        runId: `pin${run}`,
        target: () => nodes[0],
      });
      pinned.push(pin);
      console.log(`${describeRun(`run ${run + 1} pinned to ${nodes[0]!.name}`, pin)}; ${pinCpu}`);
    }
    const rrMedian = medianOfRuns(roundRobin);
    console.log(describeRun(`median of ${runs} x ${durationMs / 1000}s round-robin`, rrMedian));
    const flat = (prefix: string, result: RunResult): ScenarioResult => ({
      [`${prefix}_appends_per_s`]: result.ops_per_s,
      [`${prefix}_p50_ms`]: result.p50_ms,
      [`${prefix}_p99_ms`]: result.p99_ms,
      [`${prefix}_errors`]: result.errors,
    });
    if (roundRobinOnly) return flat('round_robin', rrMedian);
    const pinMedian = medianOfRuns(pinned);
    console.log(describeRun(`median of ${runs} x ${durationMs / 1000}s pinned`, pinMedian));
    const failover = await measureFailover(nodes, connections);
    console.log(
      `failover: SIGKILL ${failover.killed}; ${failover.recovered}/${failover.samples} groups accepted an append; ` +
        `last after ${failover.failover_ms ?? 'n/a'} ms; ${failover.elections.oneRound} of its groups ` +
        `elected a new leader in one round, ${failover.elections.moreRounds} needed more`,
    );
    console.log(describeRun('load during failover', failover.load));
    return {
      ...flat('round_robin', rrMedian),
      ...flat('pinned', pinMedian),
      failover_ms: failover.failover_ms,
    };
  } finally {
    const signal = values['profile-dir'] === undefined ? 'SIGKILL' : 'SIGTERM';
    await Promise.all(nodes.map((node) => node.kill(signal)));
    rmSync(root, { recursive: true, force: true });
  }
};

const stringList = (value: unknown): string[] =>
  Array.isArray(value) ? value.map(String) : typeof value === 'string' ? [value] : [];

export const clusterScenario: Scenario = {
  name: 'cluster',
  describe:
    'Three local nodes: round-robin vs pinned appends with CPU and Raft cost per append, then failover',
  help: 'Starts its own three nodes (not --url or --spawn). Per run: appends/s, p50/p99, CPU of each node and of the load generator, turns/fsyncs/messages per append, turn-loop busy %, fsync ms; then SIGKILLs the busiest leader and times the failover. --duration is per run.',
  spawn: { default: 3, required: true, ownNodes: true },
  defaults: { durationS: 10 },
  options: {
    runs: { type: 'number', default: 3, describe: 'Counted runs of each kind (medians reported)' },
    'round-robin-only': {
      type: 'boolean',
      default: false,
      describe: 'Only the round-robin runs (no pinned runs, no failover)',
    },
    'node-env': {
      type: 'string',
      array: true,
      describe: 'NAME=VALUE for every node (repeatable), for experiments',
    },
    'node-arg': {
      type: 'string',
      array: true,
      describe: 'A Node/V8 flag for every node, e.g. --node-arg=--single-threaded-gc (repeatable)',
    },
    'profile-dir': { type: 'string', describe: 'Write a V8 CPU profile per node into this directory' },
  },
  run: (context) =>
    runClusterBench(
      {
        durationS: context.options.durationS,
        runs: Number(context.flags['runs']),
        connections: context.options.connections,
        nodeEnv: stringList(context.flags['node-env']),
        nodeArgs: stringList(context.flags['node-arg']),
        profileDir:
          typeof context.flags['profile-dir'] === 'string' ? context.flags['profile-dir'] : undefined,
        roundRobinOnly: context.flags['round-robin-only'] === true,
        rate: context.options.rate,
      },
      context.recorder,
      (line) => context.log(line),
    ),
};
