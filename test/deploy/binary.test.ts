// The self-contained release (`npm run dist`): built once for this file, copied to a temporary
// directory with no node_modules above it, and run from another working directory. The executable
// serves a node (appends and reads back, with exact token counts from the tokenizer workers, which
// load their files from beside it), starts its own nodes for `bench`, and is what the Dockerfile
// runs: its ENTRYPOINT + CMD with its ENV, paths mapped from /opt/fastpaca to the copy, start a node
// that its HEALTHCHECK command finds healthy and that SIGTERM stops with exit 0.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getEncoding } from 'js-tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../e2e/process-harness.js';
import { envPairs, execForm, parseDockerfile, readRepoFile } from './deploy-files.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'fastpaca-release-'));
const release = join(work, 'opt-fastpaca');
const children = new Set<ChildProcess>();

interface Started {
  readonly child: ChildProcess;
  readonly base: string;
  readonly exited: Promise<number | null>;
  output(): string;
}

/** Starts the release's executable with exactly `env` (plus PATH), from `cwd`. */
const startExecutable = (
  program: string,
  args: readonly string[],
  env: Record<string, string>,
  port: number,
): Started => {
  const child = spawn(program, args, {
    cwd: work,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-20_000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-20_000)));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, base: `http://127.0.0.1:${port}`, exited, output: () => output };
};

const waitReady = async (started: Started, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) throw new Error(`exited early:\n${started.output()}`);
    try {
      const response = await fetch(`${started.base}/health/ready`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not ready within ${timeoutMs} ms:\n${started.output()}`);
};

const stop = async (started: Started): Promise<number | null> => {
  if (started.child.pid !== undefined && started.child.exitCode === null)
    process.kill(started.child.pid, 'SIGTERM');
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000));
  const code = await Promise.race([started.exited, timeout]);
  if (code === 'timeout') throw new Error(`did not stop within 30 s of SIGTERM:\n${started.output()}`);
  return code;
};

const json = { 'content-type': 'application/json' };

/** Creates a context, appends `text`, reads the tail back. */
const appendAndRead = async (
  base: string,
  id: string,
  text: string,
  headers: Record<string, string> = {},
) => {
  const created = await fetch(`${base}/v1/contexts/${id}`, {
    method: 'PUT',
    headers: { ...json, ...headers },
    body: '{"token_budget":1000}',
  });
  expect(created.status).toBe(201);
  const appended = await fetch(`${base}/v1/contexts/${id}/messages`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } }),
  });
  expect(appended.status).toBe(201);
  const tail = await fetch(`${base}/v1/contexts/${id}/tail`, { headers });
  expect(tail.status).toBe(200);
  return {
    appended: (await appended.json()) as { seq: number; token_estimate: number },
    messages: ((await tail.json()) as { messages: { seq: number; parts: { text: string }[] }[] }).messages,
  };
};

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-dist.mjs'], {
    cwd: repoRoot,
    stdio: 'pipe',
    timeout: 240_000,
  });
  cpSync(join(repoRoot, 'dist', 'release'), release, { recursive: true });
}, 300_000);

afterAll(() => {
  for (const child of children)
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('npm run dist', () => {
  it('makes one executable plus the addons beside it, and nothing needs the repository', () => {
    expect(existsSync(join(release, 'fastpaca'))).toBe(true);
    for (let dir = work; dirname(dir) !== dir; dir = dirname(dir)) {
      expect(existsSync(join(dir, 'node_modules')), `${dir}/node_modules`).toBe(false);
    }
    const version = execFileSync(join(release, 'fastpaca'), ['--version'], { cwd: work, env: {} })
      .toString()
      .trim();
    expect(version).toBe((JSON.parse(readRepoFile('package.json')) as { version: string }).version);
  });

  it('serves a node: appends and reads back, with exact token counts from the worker threads', async () => {
    const port = await freePort();
    const node = startExecutable(
      join(release, 'fastpaca'),
      ['serve', '--host', '127.0.0.1', '--port', String(port), '--raft-port', String(await freePort())],
      {
        FASTPACA_RAFT_DATA_DIR: join(work, 'data-serve'),
        FASTPACA_TOKEN_ESTIMATOR: 'tiktoken:gpt-4o',
        FASTPACA_TOKENIZER_WORKERS: '1',
      },
      port,
    );
    await waitReady(node);
    const text = 'The binary counts tokens exactly, with its tokenizer workers loading from beside it.';
    const { appended, messages } = await appendAndRead(node.base, 'binary', text);
    expect(appended.seq).toBe(1);
    expect(appended.token_estimate).toBe(getEncoding('o200k_base').encode(text).length);
    expect(messages.map((message) => message.parts[0]?.text)).toEqual([text]);
    const metrics = await (await fetch(`${node.base}/metrics`)).text();
    expect(metrics).toMatch(/fastpaca_tokenizer_fallbacks_total/);
    expect(metrics).not.toMatch(/fastpaca_tokenizer_fallbacks_total\{[^}]*\} [1-9]/);
    expect(await stop(node)).toBe(0);
  }, 60_000);

  it('runs `bench`, which starts the executable itself as its node', async () => {
    const run = execFileSync(
      join(release, 'fastpaca'),
      [
        'bench',
        'append',
        '--duration',
        '1',
        '--warmup',
        '0',
        '--connections',
        '2',
        '--svg',
        join(work, 'b.svg'),
      ],
      { cwd: work, env: { PATH: process.env['PATH'] ?? '' }, timeout: 60_000 },
    ).toString();
    const summary = JSON.parse(run.trimEnd().split('\n').at(-1) ?? '') as { ok: number; errors: number };
    expect(summary.ok).toBeGreaterThan(0);
    expect(summary.errors).toBe(0);
  }, 90_000);
});

describe("the Dockerfile's command, outside Docker", () => {
  it('starts a node that the HEALTHCHECK command finds healthy, and SIGTERM stops it with exit 0', async () => {
    const instructions = parseDockerfile(readRepoFile('docker/Dockerfile'));
    const last = (keyword: string): string =>
      instructions.filter((each) => each.keyword === keyword).at(-1)?.args ?? '';
    const toCopy = (path: string): string => path.replace(/^\/opt\/fastpaca\//, `${release}/`);
    const env = Object.fromEntries(
      instructions.filter((each) => each.keyword === 'ENV').flatMap((each) => envPairs(each.args)),
    );
    // What `docker run -e FASTPACA_API_KEY=... -p ...` adds; ports and /data remapped for this machine.
    const port = await freePort();
    const runEnv = {
      ...env,
      PORT: String(port),
      FASTPACA_RAFT_PORT: String(await freePort()),
      FASTPACA_RAFT_DATA_DIR: join(work, 'data-docker'),
      FASTPACA_API_KEY: 'docker-key',
      FASTPACA_TOKENIZER_WORKERS: '1',
    };
    const [program, ...entryArgs] = execForm(last('ENTRYPOINT')).map(toCopy);
    const node = startExecutable(program as string, [...entryArgs, ...execForm(last('CMD'))], runEnv, port);
    await waitReady(node);
    const { messages } = await appendAndRead(node.base, 'docker', 'hello from the image', {
      authorization: 'Bearer docker-key',
    });
    expect(messages).toHaveLength(1);
    const healthcheck = last('HEALTHCHECK');
    const [checkProgram, ...checkArgs] = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4)).map(
      toCopy,
    );
    const healthy = execFileSync(checkProgram as string, checkArgs, {
      env: { PORT: runEnv.PORT },
      timeout: 15_000,
    });
    expect(healthy.toString()).toContain('/health/live');
    expect(await stop(node)).toBe(0);
    // Stopped: the same check now fails.
    expect(() =>
      execFileSync(checkProgram as string, checkArgs, {
        env: { PORT: runEnv.PORT },
        stdio: 'pipe',
        timeout: 15_000,
      }),
    ).toThrow();
  }, 60_000);
});
