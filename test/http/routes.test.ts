// Proves every route of the gateway answers the contract's statuses and bodies, on success and on
// the service's errors, by driving a real uWS server over HTTP (global fetch on 127.0.0.1) in front
// of an in-memory fake service.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ServiceError } from '../../src/api/errors.js';
import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

const put = (id: string, json: unknown) => call(server.base, 'PUT', `/v1/contexts/${id}`, { json });
const append = (id: string, json: unknown, headers?: Record<string, string>) =>
  call(
    server.base,
    'POST',
    `/v1/contexts/${id}/messages`,
    headers === undefined ? { json } : { json, headers },
  );
const textMessage = (text: string, extra: object = {}) => ({
  message: { role: 'user', parts: [{ type: 'text', text }], ...extra },
});

describe('contexts', () => {
  it('creates with 201, then updates with 200, returning the context view', async () => {
    const created = await put('c-create', { token_budget: 1000 });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toBe('application/json');
    expect(created.body).toMatchObject({
      id: 'c-create',
      status: 'active',
      token_budget: 1000,
      trigger_ratio: 0.7,
      policy: { strategy: 'last_n', config: { limit: 200 } },
      version: 0,
    });
    const updated = await put('c-create', {
      trigger_ratio: 0.5,
      policy: { strategy: 'skip_parts', config: { skip_kinds: ['tool'], limit: 10 } },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      trigger_ratio: 0.5,
      policy: { strategy: 'skip_parts', config: { skip_kinds: ['tool'], limit: 10 } },
    });
  });

  it('passes the service error through when token_budget is missing on create', async () => {
    const response = await put('c-nobudget', {});
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'invalid_context_config',
      message: 'token_budget is required when creating a context',
    });
  });

  it('names the offending field of an invalid config', async () => {
    const cases: [unknown, string][] = [
      [{ token_budget: 0 }, 'Invalid context config: token_budget must be >= 1'],
      [{ token_budget: 1.5 }, 'Invalid context config: token_budget must be integer'],
      [{ token_budget: 10, trigger_ratio: 0 }, 'Invalid context config: trigger_ratio must be > 0'],
      [{ token_budget: 10, trigger_ratio: 1.01 }, 'Invalid context config: trigger_ratio must be <= 1'],
      [{ token_budget: 10, metadata: [] }, 'Invalid context config: metadata must be object'],
      [
        { policy: { strategy: 'lru' } },
        'Invalid context config: policy.strategy must be one of last_n, skip_parts, manual',
      ],
      [{ policy: { strategy: 'last_n' } }, 'Invalid context config: policy.config is required'],
      [
        { policy: { strategy: 'last_n', config: {} } },
        'Invalid context config: policy.config.limit is required',
      ],
      [
        { policy: { strategy: 'last_n', config: { limit: 0 } } },
        'Invalid context config: policy.config.limit must be >= 1',
      ],
      [
        { policy: { strategy: 'skip_parts', config: { skip_kinds: [1] } } },
        'Invalid context config: policy.config.skip_kinds[0] must be string',
      ],
      [[], 'Invalid context config: body must be object'],
    ];
    for (const [json, message] of cases) {
      const response = await put('c-invalid', json);
      expect(response.status, JSON.stringify(json)).toBe(400);
      expect(response.body).toEqual({ error: 'invalid_context_config', message });
    }
    expect(server.service.calls.filter((entry) => entry.id === 'c-invalid')).toEqual([]);
  });

  it('drops unknown fields, also inside the policy config', async () => {
    const response = await put('c-unknown', {
      token_budget: 10,
      colour: 'blue',
      policy: { strategy: 'manual', config: { surprise: true }, extra: 1 },
    });
    // The fake service throws (500) if an unknown field reaches it.
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ policy: { strategy: 'manual', config: {} } });
  });

  it('reads, tombstones (204, no body) and still reads a context', async () => {
    await put('c-del', { token_budget: 10 });
    const read = await call(server.base, 'GET', '/v1/contexts/c-del');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: 'c-del', status: 'active' });
    const deleted = await call(server.base, 'DELETE', '/v1/contexts/c-del');
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    const after = await call(server.base, 'GET', '/v1/contexts/c-del');
    expect(after.body).toMatchObject({ status: 'tombstoned' });
    const revived = await put('c-del', { token_budget: 20 });
    expect(revived.status).toBe(409);
    expect(revived.body).toMatchObject({ error: 'context_tombstoned' });
  });

  it('answers 404 context_not_found for missing contexts', async () => {
    for (const [method, path] of [
      ['GET', '/v1/contexts/nope'],
      ['DELETE', '/v1/contexts/nope'],
      ['GET', '/v1/contexts/nope/messages'],
      ['GET', '/v1/contexts/nope/context'],
    ] as const) {
      const response = await call(server.base, method, path);
      expect(response.status, path).toBe(404);
      expect(response.body).toEqual({ error: 'context_not_found', message: 'Context nope not found' });
    }
  });

  it('decodes URL-encoded ids and refuses malformed ones with invalid_context_id', async () => {
    const created = await put(encodeURIComponent('user 42:chat ü'), { token_budget: 10 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'user 42:chat ü' });
    for (const raw of ['bad%ZZ', 'a%2Fb', '%00x', 'x'.repeat(257), encodeURIComponent('é'.repeat(129))]) {
      const response = await call(server.base, 'GET', `/v1/contexts/${raw}`);
      expect(response.status, raw).toBe(400);
      expect(response.body).toMatchObject({ error: 'invalid_context_id' });
    }
  });
});

describe('metadata', () => {
  it('merges shallowly and removes keys set to null', async () => {
    await put('m-1', { token_budget: 10, metadata: { a: 1, b: 2 } });
    const response = await call(server.base, 'PATCH', '/v1/contexts/m-1/metadata', {
      json: { metadata: { b: null, c: { d: 3 } } },
    });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ metadata: { a: 1, c: { d: 3 } } });
  });

  it('refuses a missing or non-object metadata with invalid_metadata', async () => {
    for (const json of [{}, { metadata: 'x' }, { metadata: null }]) {
      const response = await call(server.base, 'PATCH', '/v1/contexts/m-1/metadata', { json });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: 'invalid_metadata' });
    }
    expect((await call(server.base, 'PATCH', '/v1/contexts/m-1/metadata', { json: {} })).body).toEqual({
      error: 'invalid_metadata',
      message: 'Invalid metadata: metadata is required',
    });
  });
});

describe('messages', () => {
  it('appends with 201 {seq, version, token_estimate} and exports and tails them', async () => {
    await put('msg-1', { token_budget: 1000 });
    const first = await append('msg-1', textMessage('hi', { token_count: 7 }));
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ seq: 1, version: 1, token_estimate: 7 });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    await append('msg-1', textMessage('two'));
    await append('msg-1', textMessage('three'));
    const tail = await call(server.base, 'GET', '/v1/contexts/msg-1/tail?limit=2&offset=1');
    expect(tail.status).toBe(200);
    expect((tail.body as { messages: { seq: number }[] }).messages.map((message) => message.seq)).toEqual([
      1, 2,
    ]);
    const page = await call(server.base, 'GET', '/v1/contexts/msg-1/messages?from_seq=1&limit=1');
    expect(page.body).toMatchObject({ messages: [{ seq: 2, id: 'msg-1:2' }], next_from_seq: 2 });
    const rest = await call(server.base, 'GET', '/v1/contexts/msg-1/messages?from_seq=2');
    expect(rest.body).toEqual({ messages: [expect.objectContaining({ seq: 3 })] });
  });

  it('keeps parts opaque and drops unknown message fields', async () => {
    await put('msg-parts', { token_budget: 1000 });
    const part = { type: 'tool-call', toolCallId: 'x', input: { deep: [1, { a: null }] } };
    const response = await append('msg-parts', {
      message: { role: 'assistant', parts: [part], sentiment: 'happy' },
      trace: 'abc',
    });
    expect(response.status).toBe(201);
    const tail = await call(server.base, 'GET', '/v1/contexts/msg-parts/tail');
    expect(tail.body).toMatchObject({ messages: [{ parts: [part] }] });
    expect((tail.body as { messages: object[] }).messages[0]).not.toHaveProperty('sentiment');
  });

  it('replays an idempotent append with 200 and Idempotent-Replayed, from header or message.id', async () => {
    await put('msg-idem', { token_budget: 1000 });
    const headers = { 'idempotency-key': 'k-1' };
    expect((await append('msg-idem', textMessage('a'), headers)).status).toBe(201);
    const replay = await append('msg-idem', textMessage('a'), headers);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual({ seq: 1, version: 1, token_estimate: 1 });
    const byId = textMessage('b', { id: 'client-id-1' });
    expect((await append('msg-idem', byId)).status).toBe(201);
    const replayById = await append('msg-idem', byId);
    expect(replayById.status).toBe(200);
    expect(replayById.body).toMatchObject({ seq: 2 });
  });

  it('limits an idempotency key (header or message.id) to 256 bytes of UTF-8, not 256 characters', async () => {
    await put('msg-key-limit', { token_budget: 1000 });
    const ascii256 = await append('msg-key-limit', textMessage('a'), { 'idempotency-key': 'k'.repeat(256) });
    expect(ascii256.status).toBe(201);
    // 128 two-byte characters: 256 bytes, accepted.
    expect((await append('msg-key-limit', textMessage('b', { id: '\u00e9'.repeat(128) }))).status).toBe(201);
    // 129 characters but 257 bytes: refused (it was accepted while the edge counted characters).
    const before = server.service.calls.length;
    const over = await append('msg-key-limit', textMessage('c', { id: `${'\u00e9'.repeat(128)}k` }));
    expect(over.status).toBe(400);
    expect(over.body).toMatchObject({ error: 'invalid_message' });
    expect(server.service.calls.length).toBe(before);
  });

  it('refuses invalid messages with invalid_message naming the field, without calling the service', async () => {
    await put('msg-bad', { token_budget: 1000 });
    const before = server.service.calls.length;
    const cases: [unknown, string][] = [
      [{}, 'message is required'],
      [{ message: { parts: [{ type: 'text' }] } }, 'message.role is required'],
      [{ message: { role: 'user', parts: [] } }, 'message.parts must NOT have fewer than 1 items'],
      [{ message: { role: 'user', parts: [{ text: 'x' }] } }, 'message.parts[0].type is required'],
      [{ message: { role: 'user', parts: ['x'] } }, 'message.parts[0] must be object'],
      [{ message: { role: 'user', parts: [{ type: 1 }] } }, 'message.parts[0].type must be string'],
      [
        { message: { role: 'user', parts: [{ type: 't' }], token_count: -1 } },
        'message.token_count must be >= 0',
      ],
      [{ message: { role: 'user', parts: [{ type: 't' }], metadata: 3 } }, 'message.metadata must be object'],
      [{ message: { role: 'user', parts: [{ type: 't' }] }, if_version: 'x' }, 'if_version must be integer'],
    ];
    for (const [json, detail] of cases) {
      const response = await append('msg-bad', json);
      expect(response.status, JSON.stringify(json)).toBe(400);
      expect(response.body).toEqual({ error: 'invalid_message', message: `Invalid message: ${detail}` });
    }
    const longKey = await append('msg-bad', textMessage('x'), { 'idempotency-key': 'k'.repeat(257) });
    expect(longKey.body).toMatchObject({ error: 'invalid_message' });
    expect(server.service.calls.length).toBe(before);
  });

  it('maps conflicts, tombstones and missing contexts', async () => {
    await put('msg-err', { token_budget: 1000 });
    await append('msg-err', textMessage('a'));
    await append('msg-err', textMessage('b'));
    const conflict = await append('msg-err', { ...textMessage('c'), if_version: 1 });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toEqual({
      error: 'conflict',
      message: 'Context version changed (expected 1, found 2)',
    });
    expect((await append('msg-missing', textMessage('a'))).body).toMatchObject({
      error: 'context_not_found',
    });
    await call(server.base, 'DELETE', '/v1/contexts/msg-err');
    const tombstoned = await append('msg-err', textMessage('a'));
    expect(tombstoned.status).toBe(409);
    expect(tombstoned.body).toMatchObject({ error: 'context_tombstoned' });
  });

  it('answers [] from tail for unknown ids', async () => {
    const response = await call(server.base, 'GET', '/v1/contexts/never-seen/tail');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ messages: [] });
  });

  it('refuses bad query integers and ranges with invalid_query', async () => {
    const cases: [string, string][] = [
      ['/tail?limit=0', 'Invalid query: limit must be >= 1'],
      ['/tail?limit=1001', 'Invalid query: limit must be <= 1000'],
      ['/tail?limit=abc', 'Query parameter limit must be an integer'],
      ['/tail?limit=1.5', 'Query parameter limit must be an integer'],
      ['/tail?limit=', 'Query parameter limit must be an integer'],
      ['/tail?offset=-1', 'Invalid query: offset must be >= 0'],
      ['/tail?offset=%ZZ', 'The query string has a malformed %-escape'],
      ['/messages?from_seq=-1', 'Invalid query: from_seq must be >= 0'],
      ['/messages?limit=5000', 'Invalid query: limit must be <= 1000'],
      ['/context?budget_tokens=0', 'Invalid query: budget_tokens must be >= 1'],
      ['/context?if_version=x', 'Query parameter if_version must be an integer'],
    ];
    for (const [path, message] of cases) {
      const response = await call(server.base, 'GET', `/v1/contexts/q${path}`);
      expect(response.status, path).toBe(400);
      expect(response.body).toEqual({ error: 'invalid_query', message });
    }
  });

  it('ignores unknown query parameters and uses the first of repeated ones', async () => {
    const response = await call(server.base, 'GET', '/v1/contexts/q/tail?foo=bar&limit=5&limit=x');
    expect(response.status).toBe(200);
  });
});

describe('LLM context and compaction', () => {
  it('returns the window, honours budget_tokens and if_version', async () => {
    await put('llm-1', { token_budget: 10, trigger_ratio: 0.5 });
    await append('llm-1', textMessage('a', { token_count: 4 }));
    const view = await call(server.base, 'GET', '/v1/contexts/llm-1/context');
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ version: 1, used_tokens: 4, token_count: 4, needs_compaction: false });
    const tight = await call(server.base, 'GET', '/v1/contexts/llm-1/context?budget_tokens=4');
    expect(tight.body).toMatchObject({ needs_compaction: true });
    const stale = await call(server.base, 'GET', '/v1/contexts/llm-1/context?if_version=0');
    expect(stale.status).toBe(409);
  });

  it('compacts with 200 {version} and refuses invalid replacements', async () => {
    await put('cmp-1', { token_budget: 100 });
    await append('cmp-1', textMessage('a'));
    const replacement = [{ role: 'system', parts: [{ type: 'text', text: 'summary' }], token_count: 3 }];
    const done = await call(server.base, 'POST', '/v1/contexts/cmp-1/compact', {
      json: { replacement, if_version: 1 },
    });
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ version: 2 });
    const view = await call(server.base, 'GET', '/v1/contexts/cmp-1/context');
    expect(view.body).toMatchObject({ used_tokens: 3, messages: [{ role: 'system' }] });
    const bad = await call(server.base, 'POST', '/v1/contexts/cmp-1/compact', {
      json: { replacement: [{ role: 'user', parts: [{ type: 'text' }] }, { role: 'user' }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({
      error: 'invalid_replacement',
      message: 'Invalid replacement: replacement[1].parts is required',
    });
    const conflict = await call(server.base, 'POST', '/v1/contexts/cmp-1/compact', {
      json: { replacement, if_version: 1 },
    });
    expect(conflict.body).toMatchObject({ error: 'conflict' });
  });
});

describe('operations', () => {
  it('reports liveness, readiness (503 with reason and Retry-After), metrics and openapi', async () => {
    expect(await call(server.base, 'GET', '/health/live')).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await call(server.base, 'GET', '/health/ready')).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    server.readiness = { ready: false, reason: 'joining cluster' };
    const starting = await call(server.base, 'GET', '/health/ready');
    expect(starting.status).toBe(503);
    expect(starting.body).toEqual({ status: 'starting', reason: 'joining cluster' });
    expect(starting.headers.get('retry-after')).toBe('1');
    server.readiness = { ready: true };
    const metrics = await fetch(`${server.base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(await metrics.text()).toBe('fastpaca_up 1\n');
    const openapi = await call(server.base, 'GET', '/openapi.json');
    expect(openapi.body).toMatchObject({ openapi: '3.1.0' });
  });

  it('answers 404 not_found for unknown routes and 405 with Allow for wrong methods', async () => {
    for (const path of ['/', '/v2/contexts/x', '/v1/contexts/x/unknown', '/v1/contexts/', '/health']) {
      const response = await call(server.base, 'GET', path);
      expect(response.status, path).toBe(404);
      expect(response.body).toEqual({ error: 'not_found', message: 'No such route' });
    }
    const wrong = await call(server.base, 'POST', '/v1/contexts/x');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('PUT, GET, DELETE');
    expect(wrong.body).toEqual({ error: 'method_not_allowed', message: 'POST is not allowed here' });
    expect((await call(server.base, 'DELETE', '/health/live')).headers.get('allow')).toBe('GET');
  });

  it('maps any ServiceError from the service to its code and status', async () => {
    server.service.failNext = new ServiceError('raft_timeout', 'The write timed out', {
      retryAfterSeconds: 2.5,
    });
    const response = await call(server.base, 'GET', '/v1/contexts/x');
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(response.body).toEqual({ error: 'raft_timeout', message: 'The write timed out' });
    server.service.failNext = new ServiceError('rate_limited', 'Slow down');
    const limited = await call(server.base, 'GET', '/v1/contexts/x');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
  });

  it('reports every request to onRequest with its route label and status', async () => {
    server.observed.length = 0;
    await call(server.base, 'GET', '/health/live');
    await call(server.base, 'GET', '/v1/contexts/nobody');
    await call(server.base, 'GET', '/nowhere');
    expect(server.observed).toEqual([
      { route: 'GET /health/live', status: 200 },
      { route: 'GET /v1/contexts/:id', status: 404 },
      { route: 'unmatched', status: 404 },
    ]);
  });
});
