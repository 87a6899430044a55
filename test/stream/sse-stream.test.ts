// The SSE mirror (GET /v1/contexts/:id/events) on one real node: the same frames as the websocket,
// `id:` = version, resumed exactly with Last-Event-ID (which takes the place of ?cursor), the same
// refusals, and the tombstone's final close event.

import { request } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { call, startTestNode, type TestNode } from '../e2e/node-harness.js';
import { SseClient } from './sse-client.js';
import { versionProblems } from './version-checker.js';

const key = 'sse-test-key-0123456789';
const auth = { authorization: `Bearer ${key}` };
let sequence = 0;
const uniqueId = (prefix: string): string => `${prefix}-${process.pid}-${(sequence++).toString(36)}`;

describe('SSE mirror of the stream', () => {
  let node: TestNode;
  const eventsUrl = (id: string, query = '') => `${node.base}/v1/contexts/${id}/events${query}`;
  const append = async (id: string, text: string): Promise<number> => {
    const body = { message: { role: 'user', parts: [{ type: 'text', text }] } };
    const response = await call(node.base, 'POST', `/v1/contexts/${id}/messages`, body, auth);
    expect(response.status).toBe(201);
    return (response.body as { version: number }).version;
  };
  const create = async (id: string) => {
    expect((await call(node.base, 'PUT', `/v1/contexts/${id}`, { token_budget: 100_000 }, auth)).status).toBe(
      201,
    );
  };

  beforeAll(async () => {
    node = await startTestNode({ env: { FASTPACA_API_KEY: key, FASTPACA_STREAM_PING_INTERVAL_MS: '200' } });
  });
  afterAll(async () => {
    await node.destroy();
  });

  it('streams text/event-stream with id = version, and resumes exactly from Last-Event-ID', async () => {
    const id = uniqueId('sse-resume');
    await create(id);
    for (let n = 0; n < 5; n++) await append(id, `before ${n}`);
    const first = await SseClient.connect(eventsUrl(id, '?cursor=2'), auth);
    expect(first.status).toBe(200);
    await first.until(() => first.lastEventId === '5', 5000, 'version 5');
    first.close();
    await first.ended;
    for (let n = 0; n < 5; n++) await append(id, `while away ${n}`);
    // ?cursor=0 is ignored in favour of the header a reconnecting EventSource sends.
    const resumed = await SseClient.connect(eventsUrl(id, '?cursor=0'), { ...auth, 'last-event-id': '5' });
    const last = await append(id, 'after');
    await resumed.until(() => resumed.lastEventId === String(last), 5000, `version ${last}`);
    const frames = (client: SseClient) => client.events.map((event) => event.data);
    expect(versionProblems(frames(first), 2, 5)).toEqual([]);
    expect(versionProblems(frames(resumed), 5, last)).toEqual([]);
    for (const event of [...first.events, ...resumed.events].filter((e) => e.event === 'message')) {
      expect(event.id).toBe(String(event.data.version));
      expect(event.data.type).toBe('message');
    }
    resumed.close();
  });

  it('sends pings, refuses without the key (401), for an unknown context (404), for a bad Last-Event-ID (400)', async () => {
    const id = uniqueId('sse-refusals');
    await create(id);
    const pinged = await SseClient.connect(eventsUrl(id), auth);
    await pinged.until(() => pinged.events.some((event) => event.event === 'ping'), 5000, 'a ping');
    pinged.close();
    expect((await SseClient.connect(eventsUrl(id))).status).toBe(401);
    expect((await SseClient.connect(eventsUrl(uniqueId('nobody')), auth)).status).toBe(404);
    expect((await SseClient.connect(eventsUrl(id), { ...auth, 'last-event-id': 'x' })).status).toBe(400);
  });

  it('ends a tombstoned context with its tombstoned event and a close event (1000)', async () => {
    const id = uniqueId('sse-tombstone');
    await create(id);
    await append(id, 'bye');
    const client = await SseClient.connect(eventsUrl(id), auth);
    await client.until(() => client.lastEventId === '1', 5000, 'version 1');
    expect((await call(node.base, 'DELETE', `/v1/contexts/${id}`, undefined, auth)).status).toBe(204);
    await client.ended;
    expect(client.events.filter((e) => e.event !== 'ping').map((e) => [e.event, e.data.type])).toEqual([
      ['message', 'message'],
      ['tombstoned', 'tombstoned'],
      ['close', 'close'],
    ]);
    expect(client.events.at(-1)?.data).toMatchObject({ code: 1000 });
  });
});

describe('SSE slow consumer', () => {
  it('closes an SSE client that stops reading once its unread bytes pass the limit', async () => {
    const node = await startTestNode({ env: { FASTPACA_STREAM_BUFFER_BYTES_MAX: '65536' } });
    try {
      const id = uniqueId('sse-slow');
      expect((await call(node.base, 'PUT', `/v1/contexts/${id}`, { token_budget: 100_000 })).status).toBe(
        201,
      );
      // A reader that takes the headers and then nothing more (paused: TCP backpressure builds up).
      const ended = new Promise<void>((resolve, reject) => {
        const req = request(`${node.base}/v1/contexts/${id}/events`, (res) => {
          expect(res.statusCode).toBe(200);
          res.pause();
          res.on('end', resolve);
          res.on('close', resolve);
        });
        req.on('error', reject);
        req.end();
      });
      const slowClosed = async (): Promise<boolean> => {
        const metrics = await fetch(`${node.base}/metrics`).then((response) => response.text());
        return /^fastpaca_stream_slow_consumers_closed_total\{[^}]*\} 1$/m.test(metrics);
      };
      const big = 'z'.repeat(200_000);
      for (let n = 0; n < 300 && !(await slowClosed()); n++) {
        const body = {
          message: { role: 'user', parts: [{ type: 'text', text: `${n} ${big}` }], token_count: 1 },
        };
        expect((await call(node.base, 'POST', `/v1/contexts/${id}/messages`, body)).status).toBe(201);
      }
      expect(await slowClosed()).toBe(true);
      const metrics = await fetch(`${node.base}/metrics`).then((response) => response.text());
      expect(metrics).toMatch(/^fastpaca_stream_connections\{[^}]*\} 0$/m);
      void ended;
    } finally {
      await node.destroy();
    }
  });
});

describe('SSE fast consumer', () => {
  // uWS keeps no byte count for a chunked HTTP response: reading one as "written minus getWriteOffset()"
  // grew with every byte sent, so every SSE client passed the limit (here 64 KiB) and was closed as
  // slow, and a replay waited for a writable event that never came (until the next ping, 30 s).
  const limit = 65_536;
  const text = (n: number): string => `${n} ${'q'.repeat(10_000)}`;
  const messages = (client: SseClient): number => client.events.filter((e) => e.event === 'message').length;

  it('keeps a client that reads everything, live and in replay, past many times its unread-bytes limit', async () => {
    const node = await startTestNode({ env: { FASTPACA_STREAM_BUFFER_BYTES_MAX: String(limit) } });
    try {
      const id = uniqueId('sse-fast');
      expect((await call(node.base, 'PUT', `/v1/contexts/${id}`, { token_budget: 10_000_000 })).status).toBe(
        201,
      );
      const live = await SseClient.connect(`${node.base}/v1/contexts/${id}/events`);
      expect(live.status).toBe(200);
      const count = 60; // about 600 KB of frames: nine times the limit
      for (let n = 0; n < count; n++) {
        const body = { message: { role: 'user', parts: [{ type: 'text', text: text(n) }], token_count: 1 } };
        expect((await call(node.base, 'POST', `/v1/contexts/${id}/messages`, body)).status).toBe(201);
      }
      await live.until(() => messages(live) >= count, 10_000, `${count} live messages`);
      // The replay of the same history from the start, faster than one ping interval (30 s).
      const replay = await SseClient.connect(`${node.base}/v1/contexts/${id}/events?cursor=0`);
      await replay.until(() => messages(replay) >= count, 10_000, `${count} replayed messages`);
      for (const client of [live, replay]) {
        expect(client.events.filter((e) => e.event === 'close')).toEqual([]);
        expect(
          versionProblems(
            client.events.map((e) => e.data),
            0,
            count,
          ),
        ).toEqual([]);
        client.close();
      }
      const metrics = await fetch(`${node.base}/metrics`).then((response) => response.text());
      expect(metrics).not.toMatch(/^fastpaca_stream_slow_consumers_closed_total\{[^}]*\} [1-9]/m);
    } finally {
      await node.destroy();
    }
  }, 60_000);
});
