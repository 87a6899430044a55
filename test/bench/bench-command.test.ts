// `fastpaca bench <scenario>` smoke runs: every scenario runs for seconds against nodes it starts
// (the real binary, dist/src/cli/main.js, so `npm run build` first), prints its final JSON line
// with the numbers it promises, and writes an SVG that parses as XML with both plots in it. Then
// the command line's refusals, and the old entry points (npm run bench, bench:cluster) as aliases.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, describe, expect, it } from 'vitest';
import { LatencyRecorder } from '../../bench/recorder.js';
import { hermeticEnv } from '../e2e/process-harness.js';

const cliPath = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const clusterBenchPath = fileURLToPath(new URL('../../dist/bench/cluster-bench.js', import.meta.url));
const workDir = mkdtempSync(join(tmpdir(), 'fastpaca-bench-test-'));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a script with node, bounded; the child is killed by pid if it overruns. */
const runNode = (script: string, args: readonly string[], timeoutMs: number): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: workDir,
      env: hermeticEnv({}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(
        new Error(`${script} ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });

interface Summary {
  readonly scenario: string;
  readonly ok: number;
  readonly errors: number;
  readonly ops_per_s: number | null;
  readonly latency: Record<string, { ops: number; p50_ms: number; p99_ms: number; max_ms: number }>;
  readonly intervals: number;
  readonly svg: string;
  readonly [key: string]: unknown;
}

const lastJsonLine = (stdout: string): Summary => {
  const lines = stdout.trimEnd().split('\n');
  return JSON.parse(lines[lines.length - 1] ?? '') as Summary;
};

/** The SVG is well-formed XML with a percentile line per series and one bar per histogram bucket. */
const expectPlot = (path: string, minimumOps: number): void => {
  const text = readFileSync(path, 'utf8');
  expect(XMLValidator.validate(text)).toBe(true);
  const parsed = new XMLParser({
    ignoreAttributes: false,
    isArray: (_name: string, _path: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute,
  }).parse(text) as {
    svg: { g: { polyline?: unknown[]; rect?: { '@_class'?: string; title?: unknown[] }[] }[] }[];
  };
  const svg = parsed.svg[0];
  expect(svg).toBeDefined();
  const [percentiles, histogram] = svg?.g ?? [];
  expect(percentiles?.polyline?.length).toBe(3);
  const bars = (histogram?.rect ?? []).filter((rect) => rect['@_class'] === 'bar');
  expect(bars.length).toBeGreaterThan(0);
  const counted = bars.reduce(
    (sum, bar) => sum + Number(/: (\d+)$/.exec(String(bar.title?.[0]))?.[1] ?? 0),
    0,
  );
  expect(counted).toBeGreaterThanOrEqual(minimumOps);
};

const bench = async (args: readonly string[], timeoutMs = 90_000): Promise<Summary> => {
  const svg = join(workDir, `${args[0]}.svg`);
  const run = await runNode(cliPath, ['bench', ...args, '--svg', svg], timeoutMs);
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
  // Not a terminal: progress comes as plain lines, never carriage returns.
  expect(run.stdout).not.toContain('\r');
  expect(run.stdout).toMatch(/p50 ms\s+p90 ms\s+p99 ms/);
  const summary = lastJsonLine(run.stdout);
  expect(summary.scenario).toBe(args[0]);
  expect(summary.svg).toBe(svg);
  expect(summary.intervals).toBeGreaterThan(0);
  expectPlot(svg, summary.ok);
  return summary;
};

afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('fastpaca bench scenarios (short smoke runs)', () => {
  it('append: durable appends with latency percentiles', async () => {
    const summary = await bench(['append', '--duration', '2', '--warmup', '0', '--connections', '4']);
    expect(summary.ok).toBeGreaterThan(0);
    expect(summary.errors).toBe(0);
    expect(summary.ops_per_s).toBeGreaterThan(0);
    const append = summary.latency['append'];
    expect(append?.ops).toBe(summary.ok);
    expect(append?.p50_ms).toBeGreaterThan(0);
    expect(append?.p99_ms).toBeGreaterThanOrEqual(append?.p50_ms ?? 0);
  }, 60_000);

  it('mix: appends, window reads and tail reads each measured', async () => {
    const summary = await bench([
      'mix',
      '--count',
      '300',
      '--connections',
      '4',
      '--warmup',
      '0',
      '--contexts',
      '8',
      '--prefill',
      '3',
    ]);
    expect(summary.errors).toBe(0);
    expect(summary.ok).toBe(300);
    for (const kind of ['append', 'window', 'tail', 'all'])
      expect(summary.latency[kind]?.ops).toBeGreaterThan(0);
  }, 60_000);

  it('durability: synced appends at a fixed rate, with the fsyncs they took', async () => {
    const summary = await bench(['durability', '--duration', '2', '--rate', '20']);
    expect(summary.errors).toBe(0);
    // Open loop at 20/s for 2 s: about 40 appends, one connection.
    expect(summary.ok).toBeGreaterThanOrEqual(30);
    expect(summary.ok).toBeLessThanOrEqual(41);
    expect(summary['fsyncs']).toBeGreaterThan(0);
    expect(summary['fsync_mean_ms']).toBeGreaterThan(0);
  }, 60_000);

  it('cold-start: restart on the filled data, time to ready and first read, nothing lost', async () => {
    const summary = await bench([
      'cold-start',
      '--messages',
      '400',
      '--contexts',
      '20',
      '--connections',
      '8',
      '--kill',
      '--restarts',
      '2',
    ]);
    expect(summary['stop']).toBe('SIGKILL');
    expect(summary['restarts']).toBe(2);
    expect(summary['contexts_with_wrong_last_seq']).toBe(0);
    expect(summary.latency['fill']?.ops).toBe(400);
    // Every context is read back after each restart.
    expect(summary.latency['read-after-restart']?.ops).toBe(40);
    const ready = summary['ready_ms'] as number;
    expect(ready).toBeGreaterThan(0);
    expect(summary['first_read_ms']).toBeGreaterThanOrEqual(ready);
    const readyEach = String(summary['ready_ms_each']).split(' ').map(Number);
    const firstReadEach = String(summary['first_read_ms_each']).split(' ').map(Number);
    expect(readyEach).toHaveLength(2);
    expect(firstReadEach).toHaveLength(2);
    readyEach.forEach((ms, i) => expect(firstReadEach[i]).toBeGreaterThanOrEqual(ms));
  }, 90_000);

  it('failover: a local 3-node cluster loses its busiest leader and every group is writable again', async () => {
    const summary = await bench(
      ['failover', '--duration', '6', '--kill-after', '2', '--connections', '4'],
      120_000,
    );
    expect(summary['groups_recovered']).toBe(256);
    expect(summary['failover_ms']).toBeGreaterThan(0);
    expect(summary['killed_led_groups']).toBeGreaterThan(0);
    expect(summary.ok).toBeGreaterThan(0);
  }, 150_000);

  it('fill: many contexts, then the RSS of the node started here', async () => {
    const summary = await bench(['fill', '--contexts', '50', '--messages', '4', '--connections', '8']);
    expect(summary.ok).toBe(200);
    expect(summary['rss_mib']).toBeGreaterThan(10);
  }, 60_000);
});

describe('fastpaca bench command line', () => {
  it('every scenario has --help; the cluster bench alias answers --help without a stack trace', async () => {
    const list = await runNode(cliPath, ['bench', '--help'], 15_000);
    expect(list.code).toBe(0);
    for (const name of ['append', 'mix', 'cold-start', 'durability', 'failover', 'fill', 'cluster']) {
      expect(list.stdout).toContain(`fastpaca bench ${name}`);
    }
    const help = await runNode(cliPath, ['bench', 'cold-start', '--help'], 15_000);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--messages');
    const alias = await runNode(clusterBenchPath, ['--help'], 15_000);
    expect(alias.code).toBe(0);
    expect(alias.stdout).toContain('--round-robin-only');
    expect(alias.stderr).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('refuses bad options with exit 2 or a one-line reason, before contacting anything', async () => {
    const unknown = await runNode(cliPath, ['bench', 'append', '--no-such-flag'], 15_000);
    expect(unknown.code).toBe(2);
    const spawnCount = await runNode(cliPath, ['bench', 'append', '--spawn', '2'], 15_000);
    expect(spawnCount.code).toBe(2);
    for (const [args, reason] of [
      [['cold-start', '--url', 'http://127.0.0.1:9'], /drop --url/],
      [['append', '--url', 'https://127.0.0.1:9'], /only http/],
      [['failover', '--spawn', '1'], /needs --spawn 3/],
      [['append', '--connections', '0'], /--connections must be a positive integer/],
    ] as const) {
      const run = await runNode(cliPath, ['bench', ...args], 15_000);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(reason);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  }, 60_000);

  it('npm run bench and bench:cluster go through the CLI', () => {
    const scripts = (
      JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    expect(scripts['bench']).toMatch(/dist\/src\/cli\/main\.js bench$/);
    expect(scripts['bench:cluster']).toMatch(/dist\/src\/cli\/main\.js bench cluster$/);
  });
});

describe('LatencyRecorder', () => {
  it('puts every recorded latency in exactly one histogram bucket, in ascending buckets', () => {
    const recorder = new LatencyRecorder();
    const latenciesNs = [1, 500, 1_000, 25_000, 1e6, 3.3e6, 1e9, 2e11];
    for (const latency of latenciesNs) recorder.record('op', latency);
    const buckets = recorder.buckets();
    expect(buckets.reduce((sum, [, count]) => sum + count, 0)).toBe(latenciesNs.length);
    for (let index = 1; index < buckets.length; index++) {
      expect(buckets[index]![0]).toBeGreaterThan(buckets[index - 1]![0]);
    }
    expect(recorder.summary()['op']?.ops).toBe(latenciesNs.length);
  });
});
