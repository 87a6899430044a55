// Runs one scenario end to end: start the nodes it needs on 127.0.0.1 (or use the given URLs, and
// nothing else), run it with progress, then print the human table, write the SVG plot and print the
// JSON line (always the last line). Every node started here is stopped by its pid, also on failure.
import { writeFileSync } from 'node:fs';
import { startLocalNodes, waitHealthy, type LocalNodes } from './local-nodes.js';
import { startProgress, type BenchOutput } from './progress.js';
import { LatencyRecorder, type KindSummary } from './recorder.js';
import type { BenchContext, CommonOptions, Scenario, ScenarioResult } from './scenario.js';
import { round } from './stats.js';
import { renderLatencySvg } from './svg-plot.js';

export interface BenchRun {
  readonly scenario: Scenario;
  readonly options: CommonOptions;
  readonly flags: Readonly<Record<string, unknown>>;
  readonly svgPath: string;
  readonly output: BenchOutput;
}

/** Where the load goes; a reason to refuse the combination of options, or undefined. */
export const checkTargets = (scenario: Scenario, options: CommonOptions): string | undefined => {
  for (const url of options.urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `--url ${url} is not a URL`;
    }
    if (parsed.protocol !== 'http:') return `--url ${url}: only http:// URLs (the node speaks HTTP/1.1)`;
  }
  if (scenario.spawn.required && options.urls.length > 0) {
    return `${scenario.name} runs only against nodes it starts itself: drop --url`;
  }
  if (options.urls.length > 0 && options.spawn !== 0) return 'give either --url or --spawn, not both';
  if (scenario.spawn.required && options.spawn !== 0 && options.spawn !== scenario.spawn.default) {
    return `${scenario.name} needs --spawn ${scenario.spawn.default}`;
  }
  return undefined;
};

const headerRow = ['kind', 'ops', 'ops/s', 'errors', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'];

const table = (rows: readonly (readonly string[])[]): string => {
  const widths = headerRow.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows
    .map((row) => row.map((cell, column) => cell.padStart(widths[column] ?? 0)).join('  '))
    .join('\n');
};

export const runBench = async (run: BenchRun): Promise<ScenarioResult> => {
  const { scenario, options, output } = run;
  const problem = checkTargets(scenario, options);
  if (problem !== undefined) throw new Error(problem);
  let local: LocalNodes | undefined;
  let progressSeconds = 0;
  let progressActive = false;
  const log = (line: string): void =>
    output.write(output.tty && progressActive ? `\r\x1b[2K${line}\n` : `${line}\n`);
  try {
    const spawnCount =
      options.urls.length > 0 || scenario.spawn.ownNodes ? 0 : options.spawn || scenario.spawn.default;
    if (spawnCount === 1 || spawnCount === 3) {
      local = await startLocalNodes({
        count: spawnCount,
        ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
        env: { FASTPACA_TOKENIZER_WORKERS: spawnCount === 3 ? '1' : '2' },
      });
      for (const node of local.nodes) await waitHealthy(node, 'ready', 60_000);
      log(
        `started ${spawnCount} node${spawnCount === 1 ? '' : 's'} on 127.0.0.1: ${local.nodes.map((node) => node.url).join(', ')}`,
      );
    }
    const targets = local === undefined ? options.urls : local.nodes.map((node) => node.url);
    const recorder = new LatencyRecorder();
    const context: BenchContext = {
      options,
      flags: run.flags,
      targets,
      nodes: local?.nodes ?? [],
      output,
      recorder,
      headers: {
        'content-type': 'application/json',
        ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
      },
      log,
      withProgress: async (label, work) => {
        if (progressSeconds === 0) recorder.start();
        const startedMs = performance.now();
        progressActive = true;
        const stop = startProgress(recorder, output, label);
        try {
          return await work();
        } finally {
          stop();
          progressActive = false;
          progressSeconds += (performance.now() - startedMs) / 1000;
        }
      },
    };
    const startedMs = performance.now();
    const result = await scenario.run(context);
    const elapsedS = (performance.now() - startedMs) / 1000;
    if (recorder.intervals.length === 0) recorder.cut();
    const latency = recorder.summary();
    const measuredS = progressSeconds > 0 ? progressSeconds : undefined;
    const rate = (ops: number): string => (measuredS === undefined ? '-' : String(round(ops / measuredS, 0)));
    const rows = [
      headerRow,
      ...Object.entries(latency).map(([kind, each]: [string, KindSummary]) => [
        kind,
        String(each.ops),
        rate(each.ops),
        String(each.errors),
        String(each.p50_ms),
        String(each.p90_ms),
        String(each.p99_ms),
        String(each.p999_ms),
        String(each.max_ms),
      ]),
    ];
    const where =
      local === undefined
        ? scenario.spawn.ownNodes
          ? 'its own 3 nodes'
          : options.urls.join(', ')
        : `${local.nodes.length} node(s) started here`;
    output.write(
      `\n${scenario.name}: ${where}, ${options.connections} connections, ${round(elapsedS, 1)} s\n`,
    );
    output.write(`${table(rows)}\n`);
    for (const [key, value] of Object.entries(result)) output.write(`${key}: ${String(value)}\n`);
    writeFileSync(
      run.svgPath,
      renderLatencySvg({
        title: `fastpaca bench ${scenario.name}: ${recorder.ok} ok, ${recorder.errors} errors`,
        intervals: recorder.intervals,
        buckets: recorder.buckets(),
      }),
    );
    output.write(`plot: ${run.svgPath}\n`);
    const summary = {
      scenario: scenario.name,
      targets:
        local === undefined
          ? scenario.spawn.ownNodes
            ? 'own-nodes'
            : options.urls
          : `spawned:${local.nodes.length}`,
      connections: options.connections,
      duration_s: options.durationS,
      count: options.count ?? null,
      rate: options.rate ?? null,
      message_bytes: options.messageBytes,
      elapsed_s: round(elapsedS, 2),
      measured_s: measuredS === undefined ? null : round(measuredS, 2),
      ok: recorder.ok,
      errors: recorder.errors,
      ops_per_s: measuredS === undefined ? null : round(recorder.ok / measuredS, 0),
      latency,
      ...result,
      intervals: recorder.intervals.length,
      svg: run.svgPath,
    };
    output.write(`${JSON.stringify(summary)}\n`);
    return result;
  } finally {
    await local?.close();
  }
};
