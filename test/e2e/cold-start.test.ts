// A node listens before its tokenizer workers have loaded their tables (they load while the store
// opens and the Raft groups recover, README "Cold start"). Whatever arrives meanwhile must be served
// as it would be later: an append the server counts is answered 201 with the same count, and the
// node turns ready once the workers are loaded.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, describe, expect, it } from 'vitest';

import { cliPath, freePort, hermeticEnv } from './process-harness.js';

const dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-cold-start-'));
let child: ChildProcess | undefined;

afterAll(() => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null)
    process.kill(child.pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** The status of GET `url`, or 0 while nothing answers. */
const statusOf = async (url: string): Promise<number> => {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
};

const waitStatus = async (url: string, status: number, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while ((await statusOf(url)) !== status) {
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
    await sleep(5);
  }
};

const text = 'Counting starts while the tokenizer tables may still be loading.';

const appendCounted = async (base: string, id: string): Promise<{ status: number; estimate: unknown }> => {
  const response = await fetch(`${base}/v1/contexts/${id}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { token_estimate?: unknown };
  return { status: response.status, estimate: body.token_estimate };
};

describe('cold start', () => {
  it('serves a server-counted append sent as soon as the node listens, with the count it gives later', async () => {
    const port = await freePort();
    const raftPort = await freePort();
    const args = [cliPath, 'serve', '--host', '127.0.0.1', '--port', String(port)];
    args.push('--raft-port', String(raftPort), '--data-dir', dataDir);
    child = spawn(process.execPath, args, {
      env: hermeticEnv({ FASTPACA_TOKEN_ESTIMATOR: 'tiktoken:gpt-4o', FASTPACA_TOKENIZER_WORKERS: '1' }),
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const base = `http://127.0.0.1:${port}`;
    await waitStatus(`${base}/health/live`, 200, 30_000);
    // At once: the workers may still be loading (ready then says 503), or already done.
    const create = await fetch(`${base}/v1/contexts/early`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token_budget: 8_000 }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(create.status).toBeLessThan(300);
    const early = await appendCounted(base, 'early');
    await waitStatus(`${base}/health/ready`, 200, 30_000);
    const later = await appendCounted(base, 'early');
    expect(early.status).toBe(201);
    expect(later.status).toBe(201);
    expect(typeof early.estimate).toBe('number');
    expect(early.estimate).toBe(later.estimate);
    const pid = child.pid as number;
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    process.kill(pid, 'SIGTERM');
    expect(await Promise.race([exited, sleep(30_000).then(() => 'timeout')])).toBe(0);
  }, 90_000);
});
