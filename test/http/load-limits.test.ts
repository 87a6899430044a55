// The node's load limits over real HTTP: a refused body is a refusal the client can read (a lingering
// close, never EPIPE), requests in flight and request bytes held in memory are bounded (503 overloaded
// with Retry-After past them, health still answered), and a body trickled too slowly is cut off (408).
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let roomy: TestServer;
let strict: TestServer;

beforeAll(async () => {
  roomy = await startTestServer();
  strict = await startTestServer({
    limits: { bodyBytesMax: 2048 },
    load: { inflightRequestsMax: 2, bufferedBytesMax: 4096, bodyTimeoutMs: 400 },
  });
  for (const server of [roomy, strict]) {
    await call(server.base, 'PUT', '/v1/contexts/c', { json: { token_budget: 1000 } });
  }
});

afterAll(async () => {
  await Promise.all([roomy.close(), strict.close()]);
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

  it('refuses a body that would take the node past its request-byte budget with 503, and frees the budget after', async () => {
    // Each declares 2,000 bytes and sends none: together they hold 4,000 of the 4,096 bytes.
    const first = await holdOpen(strict.port, postHead(2000));
    const fits = await post(strict.port, new Agent(), appendBody('z'.repeat(1900)));
    expect(fits).toBe('201'); // one in flight: 2,000 + ~1,950 fits
    const second = await holdOpen(strict.port, postHead(2000));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const answer = await call(strict.base, 'POST', appendPath, { rawBody: appendBody('z'.repeat(1900)) });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body).toMatchObject({ error: 'overloaded' });
    for (const held of [first, second]) held.socket.destroy();
    await Promise.all([first.received, second.received]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await call(strict.base, 'POST', appendPath, { rawBody: appendBody('z'.repeat(1900)) });
    expect(after.status).toBe(201);
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
