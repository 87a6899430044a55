// The node's load limits over real HTTP: a refused body is a refusal the client can read (a lingering
// close, never EPIPE), requests in flight and request bytes held in memory are bounded (503 overloaded
// with Retry-After past them, health still answered), a body holds only the bytes it has sent (slow
// clients that declare a large body cannot lock out the rest), and a body trickled too slowly is cut
// off (408).
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let roomy: TestServer;
let strict: TestServer;
/** A small request-byte budget, and in flight unbounded, so only the budget can refuse. */
let budget: TestServer;

beforeAll(async () => {
  roomy = await startTestServer();
  strict = await startTestServer({
    limits: { bodyBytesMax: 2048 },
    load: { inflightRequestsMax: 2, bufferedBytesMax: 4096, bodyTimeoutMs: 400 },
  });
  budget = await startTestServer({
    limits: { bodyBytesMax: 2048 },
    load: { bufferedBytesMax: 4096, bodyTimeoutMs: 5000 },
  });
  for (const server of [roomy, strict, budget]) {
    await call(server.base, 'PUT', '/v1/contexts/c', { json: { token_budget: 1000 } });
  }
});

afterAll(async () => {
  await Promise.all([roomy.close(), strict.close(), budget.close()]);
});

const appendPath = '/v1/contexts/c/messages';
const appendBody = (text: string): string =>
  JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } });

/** One POST on `agent`; the status, or the socket error's code when no answer could be read. */
const post = (port: number, agent: Agent, body: string): Promise<string> =>
  new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: appendPath,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end(body);
  });

/** A raw connection that sent `head` (and maybe part of a body) and then waits; resolves with all it read. */
interface Held {
  readonly socket: Socket;
  readonly received: Promise<string>;
}

const holdOpen = (port: number, head: string): Promise<Held> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      resolve({ socket, received });
    });
    let text = '';
    const received = new Promise<string>((done) => {
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('close', () => done(text));
    });
    socket.on('error', reject);
    // Bounded: every held socket is closed by the test or by this timer.
    socket.setTimeout(10_000, () => socket.destroy());
  });

const postHead = (declared: number | 'chunked'): string =>
  `POST ${appendPath} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
  (declared === 'chunked' ? 'Transfer-Encoding: chunked\r\n\r\n' : `Content-Length: ${declared}\r\n\r\n`);

describe('refused bodies are answered readably', () => {
  it('a 2 MiB append over the 1 MiB limit, after a small one on the same keep-alive connection, always reads 413', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const big = appendBody('x'.repeat(2 * 1024 * 1024));
    const small = appendBody('hi');
    const tally: Record<string, number> = {};
    for (let attempt = 0; attempt < 100; attempt++) {
      expect(await post(roomy.port, agent, small)).toBe('201');
      const status = await post(roomy.port, agent, big);
      tally[status] = (tally[status] ?? 0) + 1;
    }
    agent.destroy();
    // Before the lingering close, about half of these were EPIPE or ECONNRESET.
    expect(tally).toEqual({ '413': 100 });
  }, 60_000);

  it('a chunked body that crosses the limit is drained and answered 413 on a connection that stays usable', async () => {
    const held = await holdOpen(strict.port, postHead('chunked'));
    const chunk = 'y'.repeat(1000);
    for (let i = 0; i < 5; i++) held.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    held.socket.write('0\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    held.socket.end();
    const text = await held.received;
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toContain('"error":"payload_too_large"');
    expect(text).toMatch(/HTTP\/1\.1 200 [^]*\{"status":"ok"\}$/);
  });
});

describe('node-wide bounds', () => {
  it('sheds /v1 requests past the in-flight limit with 503 and Retry-After, and still answers health', async () => {
    // Two requests whose bodies never finish arriving hold both in-flight places.
    const holders = await Promise.all([
      holdOpen(strict.port, postHead(100)),
      holdOpen(strict.port, postHead(100)),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const shed = await call(strict.base, 'GET', '/v1/contexts/c');
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('1');
    expect(shed.body).toMatchObject({ error: 'overloaded' });
    expect((await call(strict.base, 'GET', '/health/live')).status).toBe(200);
    for (const held of holders) held.socket.destroy();
    await Promise.all(holders.map((held) => held.received));
    // Once they are gone, requests are served again.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await call(strict.base, 'GET', '/v1/contexts/c')).status).toBe(200);
  });

  it('cuts off a body trickled slower than the deadline with 408 and closes the connection', async () => {
    const held = await holdOpen(strict.port, `${postHead(200)}{"message":`);
    // A byte now and then, never the whole body.
    const trickle = setInterval(() => held.socket.writable && held.socket.write(' '), 50);
    const text = await held.received;
    clearInterval(trickle);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('"error":"request_timeout"');
    expect((await call(strict.base, 'GET', '/v1/contexts/c')).status).toBe(200);
  });
});

describe('the request-byte budget', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const overloaded = {
    error: 'overloaded',
    message: 'The node holds too many request bytes; retry shortly',
  };

  it('holds only the bytes a body has sent: slow bodies declaring the 2,048-byte limit do not lock out other writes', async () => {
    // Under a reservation of the declared length, two of these held all 4,096 bytes of the budget and
    // the rest, and every other write, got 503 for as long as they trickled.
    const slow = await Promise.all(
      Array.from({ length: 6 }, () => holdOpen(budget.port, `${postHead(2048)}{"message":`)),
    );
    const trickle = setInterval(() => {
      for (const held of slow) if (held.socket.writable) held.socket.write(' ');
    }, 50);
    try {
      await sleep(100);
      for (let round = 0; round < 3; round++) {
        const answer = await call(budget.base, 'POST', appendPath, {
          rawBody: appendBody(`innocent ${round}`),
        });
        expect(answer.status, answer.text).toBe(201);
        await sleep(100);
      }
    } finally {
      clearInterval(trickle);
      for (const held of slow) held.socket.destroy();
    }
    // Nor was any of the slow bodies refused: they hold almost nothing.
    expect(await Promise.all(slow.map((held) => held.received))).toEqual(Array<string>(6).fill(''));
  });

  it('still refuses a body that takes the node past its budget with 503, one over the limit with 413, and frees the budget after', async () => {
    // Two bodies that have sent 2,000 bytes each of the 2,048 they declare: 4,000 of the 4,096 held.
    const holders = await Promise.all(
      [0, 1].map(() => holdOpen(budget.port, `${postHead(2048)}{${' '.repeat(1999)}`)),
    );
    try {
      await sleep(100);
      const refused = await call(budget.base, 'POST', appendPath, { rawBody: appendBody('z'.repeat(1900)) });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.body).toEqual(overloaded);
      const tooLarge = await call(budget.base, 'POST', appendPath, { rawBody: appendBody('z'.repeat(3000)) });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.body).toMatchObject({ error: 'payload_too_large' });
    } finally {
      for (const held of holders) held.socket.destroy();
    }
    await Promise.all(holders.map((held) => held.received));
    await sleep(50);
    const after = await call(budget.base, 'POST', appendPath, { rawBody: appendBody('z'.repeat(1900)) });
    expect(after.status).toBe(201);
  });
});
