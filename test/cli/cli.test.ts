// The built binary (dist/src/cli/main.js, what `npm start` and the package's "bin" run), spawned as
// an operator would: help, exit codes for bad configuration and unknown flags, and a real node on
// ephemeral ports that answers /health/ready and exits 0 on SIGTERM. `npm test` builds first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const mainJs = join(root, 'dist', 'src', 'cli', 'main.js');

interface Exited {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Spawned {
  readonly child: ChildProcess;
  readonly exited: Promise<Exited>;
  output(): { stdout: string; stderr: string };
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

/** A clean environment: the developer's FASTPACA_* or PORT must not leak into the test. */
const start = (args: readonly string[], env: Record<string, string> = {}): Spawned => {
  const child = spawn(process.execPath, [mainJs, ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<Exited>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, exited, output: () => ({ stdout, stderr }) };
};

/** Runs to completion, failing the test if the process takes more than 20 s. */
const runToEnd = async (args: readonly string[], env: Record<string, string> = {}): Promise<Exited> => {
  const spawned = start(args, env);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fastpaca ${args.join(' ')} did not exit`)), 20_000);
  });
  try {
    return await Promise.race([spawned.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
};

const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'fastpaca-cli-'));
  dirs.push(dir);
  return dir;
};

/** Polls `probe` every 50 ms until it returns a value, for at most `ms`. */
const waitFor = async <T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
};

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npm run build\` (npm test does)`);
});

describe('fastpaca binary', () => {
  it('--help and serve --help exit 0 and list the commands and flags', async () => {
    const top = await runToEnd(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('fastpaca serve');
    expect(top.stdout).toContain('fastpaca config');
    const serve = await runToEnd(['serve', '--help']);
    expect(serve.code).toBe(0);
    for (const flag of ['--port', '--raft-port', '--data-dir', '--node-name', '--cluster-seed', '--config']) {
      expect(serve.stdout).toContain(flag);
    }
    expect(serve.stdout).toContain('--api-key');
    expect(serve.stderr).toBe('');
  });

  it('exits 2 naming an invalid option and its source', async () => {
    const result = await runToEnd(['serve'], { FASTPACA_RAFT_PORT: 'abc' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'fastpaca: invalid configuration: FASTPACA_RAFT_PORT=abc (env): must be an integer between 0 and 65535\n',
    );
    expect(result.stdout).toBe('');

    const dir = tempDir();
    const file = join(dir, 'fastpaca.toml');
    writeFileSync(file, '[raft]\ntick_ms = "fast"\n');
    const fromFile = await runToEnd(['serve', '--config', file]);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain(`raft.tick_ms="fast" (file ${file}): must be an integer between`);
  });

  it('exits non-zero naming an unknown flag', async () => {
    const result = await runToEnd(['serve', '--prot', '4000']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Unknown argument: prot');
  });

  it('prints the committed sample config', async () => {
    const result = await runToEnd(['config', 'sample']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('# env PORT, flag --port, default 4000\nport = 4000\n');
  });

  it('serves on ephemeral ports, answers /health/ready and exits 0 on SIGTERM', async () => {
    const dataDir = tempDir();
    const node = start(
      ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--node-name', 'cli-test'],
      { FASTPACA_TOKEN_ESTIMATOR: 'chars4', FASTPACA_LOG_LEVEL: 'info' },
    );
    const httpPort = await waitFor('the startup line', 30_000, async () => {
      const match = /"type":"fastpaca_serving"[^\n]*"httpPort":(\d+)/.exec(node.output().stdout);
      if (match?.[1] !== undefined) return Number(match[1]);
      if (node.child.exitCode !== null) throw new Error(`serve exited early: ${node.output().stderr}`);
      return undefined;
    });
    expect(httpPort).toBeGreaterThan(0);
    const ready = await waitFor('readiness', 10_000, async () => {
      const response = await fetch(`http://127.0.0.1:${httpPort}/health/ready`);
      return response.status === 200 ? await response.json() : undefined;
    });
    expect(ready).toEqual({ status: 'ok' });

    node.child.kill('SIGTERM');
    const exited = await Promise.race([
      node.exited,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit after SIGTERM')), 20_000)),
    ]);
    expect(exited.code).toBe(0);
    expect(exited.stdout).toContain('"type":"shutdown_complete"');
    expect(exited.stderr).toBe('');
    expect(existsSync(join(dataDir, 'node-name'))).toBe(true);

    // The data directory now belongs to "cli-test": another name is a configuration error (exit 2).
    const stranger = await runToEnd(['serve', '--port', '0', '--data-dir', dataDir, '--node-name', 'other'], {
      FASTPACA_TOKEN_ESTIMATOR: 'chars4',
    });
    expect(stranger.code).toBe(2);
    expect(stranger.stderr).toContain('belongs to node "cli-test"');
  });
});
