// A connection flood against a real node whose descriptors are few (ulimit -n 700): before the
// fd-pressure watch (src/http/fd-pressure.ts), two clients holding 24,000 connections filled a
// node's 20,000 descriptors and its next LevelDB log rotation failed, which stopped the node. Now,
// once fewer than the reserve (here a quarter of the limit) are free, /v1 answers 503 overloaded
// with Retry-After and every answer closes its connection, so a chatty flood gives its descriptors
// back; the node stays up, every append it acknowledged is stored, and it serves in full when the
// flood ends.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startProcessNode, type ProcessNode } from './process-harness.js';

const openFilesLimit = 700;
const floodConnections = 800;
const floodMs = 8_000;

let node: ProcessNode;
let dataDir: string;

/** Descriptors the process holds now (0 once it is gone). */
const openFds = (pid: number): number => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-fd-flood-'));
  node = await startProcessNode({
    dataDir,
    openFilesLimit,
    env: { FASTPACA_LOG_LEVEL: 'info' },
    readyTimeoutMs: 60_000,
  });
  const created = await fetch(`${node.base}/v1/contexts/flood`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token_budget: 100_000 }),
  });
  expect(created.status).toBe(201);
}, 90_000);

afterAll(async () => {
  await node?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** A flood connection that asks for /health/live every 200 ms until told to stop or closed. */
const floodConnection = (port: number, closedByServer: { count: number }, stopAt: number): Socket => {
  const socket = connect(port, '127.0.0.1');
  let timer: NodeJS.Timeout | undefined;
  const ask = (): void => {
    if (socket.destroyed || Date.now() >= stopAt) return;
    socket.write('GET /health/live HTTP/1.1\r\nHost: flood\r\n\r\n');
    timer = setTimeout(ask, 200);
  };
  socket.on('connect', ask);
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.on('end', () => {
    closedByServer.count += 1;
  });
  socket.on('close', () => clearTimeout(timer));
  return socket;
};

/** One append on `agent`: the status and error code (from the body), or the socket error's code. */
const append = (port: number, agent: Agent, text: string): Promise<{ status: string; retryAfter?: string }> =>
  new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/contexts/flood/messages',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          const code = res.statusCode === 503 ? `:${(JSON.parse(body) as { error?: string }).error}` : '';
          resolve({
            status: `${res.statusCode}${code}`,
            ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: res.headers['retry-after'] }),
          });
        });
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: error.code ?? 'error' }));
    req.setTimeout(5_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end(JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] }, token_count: 1 }));
  });

describe('a connection flood past the node’s descriptor limit', () => {
  it('is shed by closing connections; the node stays up and loses no acknowledged append', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const acknowledged: string[] = [];
    const statuses = new Map<string, number>();
    let retryAfterMissing = 0;
    const writer = (async () => {
      const stopAt = Date.now() + floodMs + 2_000;
      for (let i = 0; Date.now() < stopAt; i += 1) {
        const answer = await append(node.port, agent, `append ${i}`);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === '201') acknowledged.push(`append ${i}`);
        if (answer.status.startsWith('503') && answer.retryAfter === undefined) retryAfterMissing += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 500));

    const closedByServer = { count: 0 };
    const stopAt = Date.now() + floodMs;
    const flood: Socket[] = [];
    for (let i = 0; i < floodConnections; i += 1) {
      flood.push(floodConnection(node.port, closedByServer, stopAt));
      if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    let peakFds = 0;
    const sampler = setInterval(() => {
      peakFds = Math.max(peakFds, openFds(node.pid));
    }, 100);
    await new Promise((resolve) => setTimeout(resolve, floodMs));
    clearInterval(sampler);
    for (const socket of flood) socket.destroy();
    await writer;
    agent.destroy();

    const log = node.output();
    console.log(
      `fd flood: ${floodConnections} connections against ulimit -n ${openFilesLimit}; ${closedByServer.count} closed ` +
        `by the node; appends ${[...statuses].map(([status, n]) => `${status}:${n}`).join(' ')}; peak ${peakFds} descriptors`,
    );
    expect(log).toContain('"type":"fd_pressure"');
    expect(log).not.toContain('out_of_file_descriptors');
    expect(closedByServer.count).toBeGreaterThan(floodConnections / 4);
    // Only acknowledgements, sheds (with Retry-After) and connections the full table could not take.
    for (const status of statuses.keys())
      expect(['201', '503:overloaded', 'ECONNRESET', 'TIMEOUT']).toContain(status);
    expect(retryAfterMissing).toBe(0);
    expect(statuses.get('201') ?? 0).toBeGreaterThan(0);

    // Serving in full again: the node is up, acknowledges at once, and holds every acknowledged append.
    let after = '';
    for (let attempt = 0; attempt < 100 && after !== '201'; attempt += 1) {
      after = (await append(node.port, new Agent(), 'after the flood')).status;
      if (after !== '201') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(after).toBe('201');
    const stored = (await (
      await fetch(`${node.base}/v1/contexts/flood/messages?from_seq=0&limit=1000`)
    ).json()) as { messages: { parts: { text: string }[] }[] };
    const texts = new Set(stored.messages.map((message) => message.parts[0]?.text));
    expect(acknowledged.filter((text) => !texts.has(text))).toEqual([]);
    expect(node.output()).toContain('"type":"fd_pressure_over"');
  }, 60_000);
});
