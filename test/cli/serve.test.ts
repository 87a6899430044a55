// `serve` in-process with a fake node, signal source and exit: the startup line, graceful close on
// the first signal, immediate exit on the second, the shutdown deadline, and start-up failures.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { duplicateSignalWindowMs, serve, type ServedNode, type ServeDeps } from '../../src/cli/serve.js';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/telemetry/logger.js';

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly type?: string;
  readonly [field: string]: unknown;
}

/** Resolves when `check` passes; polls every few ms and gives up after one second. */
const eventually = async (check: () => boolean, what: string): Promise<void> => {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

interface Harness {
  readonly deps: ServeDeps;
  readonly signals: EventEmitter;
  readonly lines: LogLine[];
  readonly exits: number[];
  readonly stderr: string[];
  readonly closes: { count: number };
  readonly clock: { now: number };
}

const harness = (options: {
  readonly start?: () => Promise<ServedNode>;
  readonly close?: () => Promise<void>;
}): Harness => {
  const signals = new EventEmitter();
  const lines: LogLine[] = [];
  const exits: number[] = [];
  const stderr: string[] = [];
  const closes = { count: 0 };
  const clock = { now: 1_000 };
  const node: ServedNode = {
    nodeId: 'node-test',
    httpPort: 41234,
    raftPort: 42234,
    close: () => {
      closes.count += 1;
      return options.close?.() ?? Promise.resolve();
    },
  };
  const deps: ServeDeps = {
    startNode: options.start ?? (() => Promise.resolve(node)),
    createLog: (config) => ({
      logger: createLogger({
        level: config.logLevel,
        destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
      }),
      flush: () => Promise.resolve(),
      flushSync: () => undefined,
    }),
    signals,
    exit: (code) => void exits.push(code),
    now: () => clock.now,
    stderr: (line) => void stderr.push(line),
  };
  return { deps, signals, lines, exits, stderr, closes, clock };
};

const loaded = (env: Record<string, string> = {}) =>
  loadConfig({ env: { FASTPACA_API_KEY: 'key-1', ...env }, cwd: '/srv/fastpaca' });

const byType = (lines: readonly LogLine[], type: string) => lines.find((line) => line.type === type);

describe('serve', () => {
  it('logs where it serves, closes on SIGTERM and exits 0', async () => {
    const h = harness({});
    const running = serve(loaded({ PORT: '4100' }), h.deps);
    await eventually(() => byType(h.lines, 'fastpaca_serving') !== undefined, 'the startup line');
    const serving = byType(h.lines, 'fastpaca_serving');
    expect(serving).toMatchObject({ level: 'info', nodeId: 'node-test', httpPort: 41234, raftPort: 42234 });
    expect(serving?.msg).toContain('0.0.0.0:41234');
    // Only non-default origins are listed (the logger redacts anything under an apiKeys key).
    expect(serving?.['configuredBy']).toEqual({ port: 'env PORT', apiKeys: '<redacted>' });
    expect(JSON.stringify(h.lines)).not.toContain('key-1');
    expect(h.signals.listenerCount('SIGTERM')).toBe(1);

    h.signals.emit('SIGTERM', 'SIGTERM');
    await expect(running).resolves.toBe(0);
    expect(h.closes.count).toBe(1);
    expect(byType(h.lines, 'shutdown_started')).toMatchObject({ signal: 'SIGTERM' });
    expect(byType(h.lines, 'shutdown_complete')).toBeDefined();
    expect(h.exits).toEqual([]);
    expect(h.signals.listenerCount('SIGTERM') + h.signals.listenerCount('SIGINT')).toBe(0);
  });

  it('exits at once with 128 + signal on a second signal during a slow close', async () => {
    const h = harness({ close: () => new Promise<void>(() => undefined) });
    const running = serve(loaded({ FASTPACA_SHUTDOWN_TIMEOUT_MS: '300' }), h.deps);
    await eventually(() => byType(h.lines, 'fastpaca_serving') !== undefined, 'the startup line');
    h.signals.emit('SIGINT', 'SIGINT');
    await eventually(() => h.closes.count === 1, 'the close');
    // The duplicate SIGINT of Ctrl-C under npm (terminal + npm's forwarded copy) is not a second signal.
    h.signals.emit('SIGINT', 'SIGINT');
    h.clock.now += duplicateSignalWindowMs - 1;
    h.signals.emit('SIGINT', 'SIGINT');
    expect(h.exits).toEqual([]);
    h.clock.now += 1;
    h.signals.emit('SIGTERM', 'SIGTERM');
    expect(h.exits).toEqual([143]);
    expect(byType(h.lines, 'shutdown_forced')).toMatchObject({ level: 'warn', signal: 'SIGTERM' });
    h.signals.emit('SIGINT', 'SIGINT');
    expect(h.exits).toEqual([143, 130]);
    // The fake exit returns, so the shutdown deadline still ends this serve.
    await expect(running).resolves.toBe(1);
  });

  it('gives up on a close that outlasts the shutdown timeout and exits 1', async () => {
    const h = harness({ close: () => new Promise<void>(() => undefined) });
    const running = serve(loaded({ FASTPACA_SHUTDOWN_TIMEOUT_MS: '50' }), h.deps);
    await eventually(() => byType(h.lines, 'fastpaca_serving') !== undefined, 'the startup line');
    const started = Date.now();
    h.signals.emit('SIGTERM', 'SIGTERM');
    await expect(running).resolves.toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(byType(h.lines, 'shutdown_timeout')).toMatchObject({ level: 'error', timeoutMs: 50 });
  });

  it('exits 1 when the close fails', async () => {
    const h = harness({ close: () => Promise.reject(new Error('store close failed')) });
    const running = serve(loaded(), h.deps);
    await eventually(() => byType(h.lines, 'fastpaca_serving') !== undefined, 'the startup line');
    h.signals.emit('SIGTERM', 'SIGTERM');
    await expect(running).resolves.toBe(1);
    expect(byType(h.lines, 'shutdown_failed')).toMatchObject({ level: 'error' });
  });

  it('stops right after starting when the signal came during start-up', async () => {
    let release: (node: ServedNode) => void = () => undefined;
    const h = harness({ start: () => new Promise<ServedNode>((resolve) => (release = resolve)) });
    const running = serve(loaded(), h.deps);
    await eventually(() => h.signals.listenerCount('SIGTERM') === 1, 'the signal handlers');
    h.signals.emit('SIGTERM', 'SIGTERM');
    release({ nodeId: 'n', httpPort: 1, raftPort: 2, close: () => Promise.resolve() });
    await expect(running).resolves.toBe(0);
    expect(byType(h.lines, 'shutdown_complete')).toBeDefined();
  });

  it('logs a failed start and exits 1; a configuration problem exits 2', async () => {
    const broken = harness({ start: () => Promise.reject(new Error('LOCK: already held by process')) });
    await expect(serve(loaded(), broken.deps)).resolves.toBe(1);
    expect(byType(broken.lines, 'start_failed')).toMatchObject({ level: 'fatal' });
    expect(broken.stderr).toEqual(['fastpaca: failed to start: LOCK: already held by process']);
    expect(broken.signals.listenerCount('SIGTERM')).toBe(0);

    const misconfigured = harness({
      start: () => Promise.reject(new ConfigError('the data directory belongs to node "a"')),
    });
    await expect(serve(loaded(), misconfigured.deps)).resolves.toBe(2);
    expect(misconfigured.stderr).toEqual([
      'fastpaca: failed to start: the data directory belongs to node "a"',
    ]);
  });

  it('logs configuration warnings before starting', async () => {
    const h = harness({});
    const running = serve(loaded({ FASTPACA_PROT: '4000' }), h.deps);
    await eventually(() => byType(h.lines, 'fastpaca_serving') !== undefined, 'the startup line');
    expect(byType(h.lines, 'config_warning')?.msg).toContain('FASTPACA_PROT');
    h.signals.emit('SIGINT', 'SIGINT');
    await expect(running).resolves.toBe(0);
  });
});
