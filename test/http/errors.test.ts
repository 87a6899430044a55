// Proves failures that are not the client's fault are answered safely: a thrown non-ServiceError (or
// a ServiceError "internal") becomes 500 with a request id in the header, the message and the log,
// and nothing internal in the body; 503/429 carry Retry-After; a client that disconnects while the
// service works is handled without touching the dead response, and the server keeps serving.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ServiceError } from '../../src/api/errors.js';
import { clientClosedStatus } from '../../src/http/exchange.js';
import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

const secret = 'password=hunter2 at /srv/fastpaca/src/secret.ts:42';

const expectSanitized500 = (response: Awaited<ReturnType<typeof call>>): string => {
  expect(response.status).toBe(500);
  const requestId = response.headers.get('x-request-id');
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(response.body).toEqual({ error: 'internal', message: `Internal error (request id ${requestId})` });
  expect(response.text).not.toContain('hunter2');
  return requestId ?? '';
};

describe('internal errors', () => {
  it('answers a thrown Error with a sanitized 500 and logs it under the request id', async () => {
    server.service.failNext = new TypeError(secret);
    const requestId = expectSanitized500(await call(server.base, 'GET', '/v1/contexts/a'));
    const logged = server.logs.find(
      (entry) =>
        entry.level === 'error' && (entry.object as { request_id?: string }).request_id === requestId,
    );
    expect(logged?.object).toMatchObject({ type: 'http_internal_error', route: 'GET /v1/contexts/:id' });
  });

  it('never logs message contents', async () => {
    server.service.failNext = new Error('boom');
    const body = { message: { role: 'user', parts: [{ type: 'text', text: 'very private words' }] } };
    expectSanitized500(await call(server.base, 'POST', '/v1/contexts/a/messages', { json: body }));
    expect(JSON.stringify(server.logs)).not.toContain('very private words');
  });

  it('treats a ServiceError "internal" and a non-Error rejection the same way', async () => {
    server.service.failNext = new ServiceError('internal', secret);
    expectSanitized500(await call(server.base, 'GET', '/v1/contexts/a'));
    server.service.failNext = { secret };
    expectSanitized500(await call(server.base, 'GET', '/v1/contexts/a'));
  });

  it('answers 500 when the metrics or readiness callbacks fail', async () => {
    const failing = await startTestServer({
      metrics: () => Promise.reject(new Error(secret)),
      readiness: () => {
        throw new Error(secret);
      },
    });
    try {
      expectSanitized500(await call(failing.base, 'GET', '/metrics'));
      expectSanitized500(await call(failing.base, 'GET', '/health/ready'));
    } finally {
      await failing.close();
    }
  });
});

describe('retryable errors', () => {
  it('sets Retry-After on every 503 and 429, defaulting to 1 second', async () => {
    for (const code of ['raft_unavailable', 'raft_timeout', 'overloaded', 'rate_limited'] as const) {
      server.service.failNext = new ServiceError(code, 'Try again');
      const response = await call(server.base, 'GET', '/v1/contexts/a/tail');
      expect(response.status).toBe(code === 'rate_limited' ? 429 : 503);
      expect(response.headers.get('retry-after')).toBe('1');
      expect(response.body).toEqual({ error: code, message: 'Try again' });
    }
    server.service.failNext = new ServiceError('overloaded', 'Busy', { retryAfterSeconds: 7 });
    expect((await call(server.base, 'GET', '/v1/contexts/a/tail')).headers.get('retry-after')).toBe('7');
  });
});

describe('aborted requests', () => {
  it('drops the answer of a request whose client went away and keeps serving', async () => {
    let release: (() => void) | undefined;
    const original = server.service.getContext.bind(server.service);
    server.service.getContext = async (id) => {
      await new Promise<void>((resolve) => (release = resolve));
      return original(id);
    };
    server.observed.length = 0;
    const controller = new AbortController();
    const pending = fetch(`${server.base}/v1/contexts/a`, { signal: controller.signal }).catch(
      () => 'aborted',
    );
    for (let i = 0; i < 200 && release === undefined; i++) await sleep(10);
    expect(release).toBeDefined();
    controller.abort();
    expect(await pending).toBe('aborted');
    for (let i = 0; i < 200 && server.observed.length === 0; i++) await sleep(10);
    expect(server.observed).toEqual([{ route: 'GET /v1/contexts/:id', status: clientClosedStatus }]);
    release?.();
    server.service.getContext = original;
    await sleep(20);
    expect((await call(server.base, 'GET', '/health/live')).status).toBe(200);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
