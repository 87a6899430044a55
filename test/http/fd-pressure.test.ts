// File descriptors as a resource (src/http/fd-pressure.ts): the watch turns on when fewer than the
// reserve are free and off only once twice the reserve is free; the reserve never exceeds a quarter
// of the limit. Under pressure the gateway answers /v1 with 503 overloaded and Retry-After, answers
// health as usual, and closes every connection after its answer, so descriptors come back.
import { Agent, request } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { watchFdPressure } from '../../src/http/fd-pressure.js';
import type { TestServer } from './harness.js';
import { startTestServer } from './harness.js';

const quietLogger = (): { lines: string[]; warn: (f: object) => void; info: (f: object) => void } => {
  const lines: string[] = [];
  return {
    lines,
    warn: (fields) => lines.push(`warn ${JSON.stringify(fields)}`),
    info: (fields) => lines.push(`info ${JSON.stringify(fields)}`),
  };
};

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 30));

describe('watchFdPressure', () => {
  it('turns on below the reserve and off only at twice the reserve', async () => {
    let used = 100;
    const logger = quietLogger();
    const watch = await watchFdPressure({
      reserve: 100,
      limit: 1_000,
      count: () => Promise.resolve(used),
      logger,
      calmIntervalMs: 5,
      busyIntervalMs: 5,
    });
    try {
      expect(watch.pressed()).toBe(false);
      used = 901; // 99 free
      await settle();
      expect(watch.pressed()).toBe(true);
      used = 850; // 150 free: above the reserve, below twice it
      await settle();
      expect(watch.pressed()).toBe(true);
      used = 800; // 200 free
      await settle();
      expect(watch.pressed()).toBe(false);
      expect(logger.lines.filter((line) => line.includes('fd_pressure'))).toHaveLength(2);
    } finally {
      watch.stop();
    }
  });

  it('an unreadable count (EMFILE at the limit) counts as full', async () => {
    const watch = await watchFdPressure({
      reserve: 100,
      limit: 1_000,
      count: () => Promise.resolve(Number.POSITIVE_INFINITY),
      logger: quietLogger(),
    });
    expect(watch.pressed()).toBe(true);
    watch.stop();
  });

  it('keeps at most a quarter of a low limit in reserve, so a node with ulimit -n 1024 still serves', async () => {
    let used = 700;
    const watch = await watchFdPressure({
      reserve: 1_024,
      limit: 1_024,
      count: () => Promise.resolve(used),
      logger: quietLogger(),
      calmIntervalMs: 5,
      busyIntervalMs: 5,
    });
    try {
      expect(watch.pressed()).toBe(false); // 324 free, reserve 256
      used = 800;
      await settle();
      expect(watch.pressed()).toBe(true);
    } finally {
      watch.stop();
    }
  });

  it('reads this process’s real limit and count on Linux', async () => {
    const watch = await watchFdPressure({ reserve: 16, logger: quietLogger() });
    expect(watch.pressed()).toBe(false);
    watch.stop();
  });
});

describe('the gateway while descriptors are nearly spent', () => {
  let server: TestServer;
  let pressed = false;

  beforeAll(async () => {
    server = await startTestServer({ fdPressed: () => pressed });
    await fetch(`${server.base}/v1/contexts/c`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token_budget: 1000 }),
    });
  });

  afterAll(async () => {
    await server.close();
  });

  /** Two requests on one keep-alive socket: the statuses, Retry-After and the socket's fate. */
  const twoOnOneSocket = async (
    path: string,
  ): Promise<{ statuses: number[]; retryAfter: string | undefined; body: string; sockets: number }> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    let body = '';
    for (let i = 0; i < 2; i += 1) {
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, path, agent }, (res) => {
          statuses.push(res.statusCode ?? 0);
          retryAfter ??= res.headers['retry-after'];
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', resolve);
        });
        req.on('socket', (socket) => sockets.add(socket));
        req.on('error', reject);
        req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
        req.end();
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    agent.destroy();
    return { statuses, retryAfter, body, sockets: sockets.size };
  };

  it('serves and keeps connections alive when descriptors are plenty', async () => {
    pressed = false;
    const result = await twoOnOneSocket('/v1/contexts/c');
    expect(result.statuses).toEqual([200, 200]);
    expect(result.sockets).toBe(1);
  });

  it('answers /v1 with 503 overloaded and Retry-After, and closes each connection after its answer', async () => {
    pressed = true;
    const result = await twoOnOneSocket('/v1/contexts/c');
    expect(result.statuses).toEqual([503, 503]);
    expect(result.retryAfter).toBe('1');
    expect(result.body).toContain('"overloaded"');
    expect(result.sockets).toBe(2);
    pressed = false;
  });

  it('still answers health, on a connection it then closes', async () => {
    pressed = true;
    const result = await twoOnOneSocket('/health/live');
    expect(result.statuses).toEqual([200, 200]);
    expect(result.sockets).toBe(2);
    pressed = false;
  });
});
