// Contract (../shared/API.md, "General" and "Operations") over real HTTP against a real node started
// with two API keys and a small body limit: auth, content types, malformed and oversized bodies,
// unknown routes, context id rules, health, metrics and the OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ContextView } from '../../src/api/domain.js';
import {
  ContractClient,
  contextPath,
  expectError,
  expectStatus,
  metricSum,
  textMessage,
  uniqueId,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

const bodyLimit = 1024;
const keyed = { Authorization: 'Bearer k1' };

describe('contract: general rules, auth, health, metrics, OpenAPI', () => {
  let node: TestNode;
  /** Authorized with the first key. */
  let api: ContractClient;
  /** No Authorization header. */
  let anonymous: ContractClient;
  beforeAll(async () => {
    node = await startTestNode({
      env: { FASTPACA_API_KEY: 'k1,k2', FASTPACA_BODY_LIMIT_BYTES: String(bodyLimit) },
    });
    api = new ContractClient(node.base, keyed);
    anonymous = new ContractClient(node.base);
  }, 30_000);
  afterAll(async () => {
    expect(node.fatalErrors).toEqual([]);
    await node.destroy();
  });

  describe('auth', () => {
    it('accepts either configured key', async () => {
      const id = uniqueId('auth-keys');
      const withFirst = new ContractClient(node.base, { Authorization: 'Bearer k1' });
      const withSecond = new ContractClient(node.base, { Authorization: 'Bearer k2' });
      await withFirst.create(id, { token_budget: 10 });
      expect((await withSecond.contextOk(id)).id).toBe(id);
      await withSecond.appendOk(id, textMessage('rotated'));
      expect(await withFirst.tailOk(id)).toHaveLength(1);
    });

    it('treats the scheme case-insensitively (RFC 9110) but the key exactly', async () => {
      const id = uniqueId('auth-scheme');
      await api.create(id);
      expect((await api.call('GET', contextPath(id), undefined, { Authorization: 'bearer k1' })).status).toBe(
        200,
      );
      expectError(
        await api.call('GET', contextPath(id), undefined, { Authorization: 'Bearer K1' }),
        401,
        'unauthorized',
      );
    });

    const refused: readonly (readonly [string, Record<string, string>])[] = [
      ['no Authorization header', {}],
      ['an unknown key', { Authorization: 'Bearer k3' }],
      ['the key list itself', { Authorization: 'Bearer k1,k2' }],
      ['a key with a suffix', { Authorization: 'Bearer k1x' }],
      ['an empty bearer', { Authorization: 'Bearer ' }],
      ['another scheme', { Authorization: 'Basic k1' }],
      ['the bare key', { Authorization: 'k1' }],
    ];

    it.each(refused)('refuses %s: 401 unauthorized with WWW-Authenticate: Bearer', async (_name, headers) => {
      const id = uniqueId('auth-refused');
      const response = await anonymous.call('PUT', contextPath(id), { token_budget: 10 }, headers);
      expectError(response, 401, 'unauthorized');
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expectError(await api.getContext(id), 404, 'context_not_found');
    });

    it('guards every /v1 route, before any other check', async () => {
      const id = uniqueId('auth-routes');
      await api.create(id);
      await api.appendOk(id, textMessage('secret'));
      const requests: readonly (readonly [string, string, unknown])[] = [
        ['PUT', contextPath(id), { token_budget: 5 }],
        ['GET', contextPath(id), undefined],
        ['DELETE', contextPath(id), undefined],
        ['PATCH', contextPath(id, '/metadata'), { metadata: { a: 1 } }],
        ['POST', contextPath(id, '/messages'), { message: textMessage('x') }],
        ['GET', contextPath(id, '/tail'), undefined],
        ['GET', contextPath(id, '/messages'), undefined],
        ['GET', contextPath(id, '/context'), undefined],
        ['POST', contextPath(id, '/compact'), { replacement: [] }],
        // Other errors would apply here; 401 comes first and says nothing about them.
        ['GET', '/v1/contexts/%00', undefined],
        ['PUT', contextPath(id), 'not json'],
        ['GET', contextPath(id, '/tail?limit=0'), undefined],
      ];
      for (const [method, path, body] of requests) {
        const response = await anonymous.call(method, path, body);
        expect({ method, path, status: response.status }).toEqual({ method, path, status: 401 });
        expectError(response, 401, 'unauthorized');
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
      }
      expect(await api.contextOk(id)).toMatchObject({ status: 'active', token_budget: 100_000, version: 1 });
      expect(await api.tailOk(id)).toHaveLength(1);
    });

    it('leaves health, metrics and the OpenAPI document open', async () => {
      for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
        const response = await fetch(`${node.base}${path}`);
        expect({ path, status: response.status }).toEqual({ path, status: 200 });
        await response.arrayBuffer();
      }
    });
  });

  describe('bodies', () => {
    it('refuses a non-JSON content type with 415 unsupported_media_type', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx']) {
        const id = uniqueId('media');
        const response = await api.call('PUT', contextPath(id), '{"token_budget": 10}', {
          'content-type': contentType,
        });
        expectError(response, 415, 'unsupported_media_type');
        expectError(await api.getContext(id), 404, 'context_not_found');
      }
    });

    it('refuses a body without a content type with 415', async () => {
      const id = uniqueId('media-none');
      const response = await fetch(`${node.base}${contextPath(id)}`, {
        method: 'PUT',
        headers: keyed,
        body: new TextEncoder().encode('{"token_budget": 10}'),
      });
      expect(response.status).toBe(415);
      expect(await response.json()).toMatchObject({ error: 'unsupported_media_type' });
    });

    it('accepts application/json with parameters and in any case', async () => {
      for (const contentType of ['application/json; charset=utf-8', 'Application/JSON']) {
        const id = uniqueId('media-ok');
        const response = await api.call('PUT', contextPath(id), '{"token_budget": 10}', {
          'content-type': contentType,
        });
        expect(expectStatus<ContextView>(response, 201).token_budget).toBe(10);
      }
    });

    it.each(['{"token_budget": ', '', '{token_budget: 10}', "{'a': 1}", '[1,', 'nul'])(
      'refuses malformed JSON %j with 400 invalid_json',
      async (text) => {
        const id = uniqueId('json');
        expectError(await api.call('PUT', contextPath(id), text), 400, 'invalid_json');
        expectError(await api.getContext(id), 404, 'context_not_found');
      },
    );

    it('refuses malformed JSON on append with 400 invalid_json, appending nothing', async () => {
      const id = uniqueId('json-append');
      await api.create(id);
      expectError(await api.call('POST', contextPath(id, '/messages'), '{"message": {'), 400, 'invalid_json');
      expect(await api.contextOk(id)).toMatchObject({ version: 0, last_seq: 0 });
    });

    /** A PUT body of exactly `bytes` bytes. */
    const putBodyOf = (bytes: number): string => {
      const frame = JSON.stringify({ token_budget: 10, metadata: { pad: '' } });
      return JSON.stringify({ token_budget: 10, metadata: { pad: 'p'.repeat(bytes - frame.length) } });
    };

    it('accepts a body of exactly the limit', async () => {
      const id = uniqueId('limit-exact');
      const body = putBodyOf(bodyLimit);
      expect(Buffer.byteLength(body)).toBe(bodyLimit);
      expectStatus<ContextView>(await api.call('PUT', contextPath(id), body), 201);
    });

    it('refuses a body over the limit with 413 payload_too_large', async () => {
      const id = uniqueId('limit-over');
      const body = putBodyOf(bodyLimit + 1);
      expectError(await api.call('PUT', contextPath(id), body), 413, 'payload_too_large');
      expectError(await api.getContext(id), 404, 'context_not_found');
      const big = putBodyOf(64 * 1024);
      expectError(await api.call('PUT', contextPath(id), big), 413, 'payload_too_large');
    });

    it('refuses a chunked body that grows over the limit with 413', async () => {
      const id = uniqueId('limit-chunked');
      const chunk = new TextEncoder().encode(' '.repeat(512));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          // Bounded: a few chunks past the limit, then the end of the body.
          if (sent >= 8) {
            controller.close();
            return;
          }
          sent++;
          controller.enqueue(chunk);
        },
      });
      let status: number;
      try {
        const response = await fetch(`${node.base}${contextPath(id)}`, {
          method: 'PUT',
          headers: { ...keyed, 'content-type': 'application/json' },
          body: stream,
          duplex: 'half',
        });
        status = response.status;
        expect(await response.json()).toMatchObject({ error: 'payload_too_large' });
      } catch {
        // The server may close the connection while the client still writes: the request is refused.
        status = 413;
      }
      expect(status).toBe(413);
      expectError(await api.getContext(id), 404, 'context_not_found');
    });
  });

  describe('routes', () => {
    it.each([
      ['GET', '/v1/nope'],
      ['GET', '/nope'],
      ['GET', '/v1/contexts'],
      ['GET', '/v1/contexts/'],
      ['GET', '/v1/contexts/a/unknown'],
      ['POST', '/v1/contexts/a/b/messages'],
      ['GET', '/v2/contexts/a'],
    ])('%s %s answers 404 not_found', async (method, path) => {
      expectError(await api.call(method, path), 404, 'not_found');
    });

    it('answers 405 with Allow for another method on a known path', async () => {
      const response = await api.call('POST', '/v1/contexts/some-id', { token_budget: 10 });
      expectError(response, 405, 'method_not_allowed');
      expect((response.headers.get('allow') ?? '').split(/,\s*/).sort()).toEqual(['DELETE', 'GET', 'PUT']);
    });
  });

  describe('context ids', () => {
    const invalid: readonly (readonly [string, string])[] = [
      ['a NUL', 'abc%00def'],
      ['a newline', 'abc%0Adef'],
      ['DEL', 'abc%7F'],
      ['a C1 control (U+0085)', 'abc%C2%85'],
      ['an encoded slash', 'a%2Fb'],
      ['257 ASCII bytes', 'a'.repeat(257)],
      ['258 bytes in 129 characters', encodeURIComponent('é'.repeat(129))],
      ['a malformed escape', 'abc%E0%A4%A'],
      ['a truncated escape', 'abc%'],
      ['invalid UTF-8', 'abc%FF'],
    ];

    it.each(invalid)('refuses %s with 400 invalid_context_id on every route', async (_name, raw) => {
      const base = `/v1/contexts/${raw}`;
      const requests: readonly (readonly [string, string, unknown])[] = [
        ['PUT', base, { token_budget: 10 }],
        ['GET', base, undefined],
        ['DELETE', base, undefined],
        ['PATCH', `${base}/metadata`, { metadata: {} }],
        ['POST', `${base}/messages`, { message: textMessage('x') }],
        ['GET', `${base}/tail`, undefined],
        ['GET', `${base}/messages`, undefined],
        ['GET', `${base}/context`, undefined],
        ['POST', `${base}/compact`, { replacement: [] }],
      ];
      for (const [method, path, body] of requests) {
        const response = await api.call(method, path, body);
        expect({ method, status: response.status }).toEqual({ method, status: 400 });
        expectError(response, 400, 'invalid_context_id');
      }
    });

    const valid: readonly (readonly [string, string])[] = [
      ['256 ASCII bytes', 'a'.repeat(256)],
      ['256 bytes in 128 characters', 'é'.repeat(128)],
      ['unicode and emoji', 'chat-ünïcødé-日本語-😀'],
      ['reserved URL characters', 'user:42 session#1?x=y&z%'],
      ['one character', 'x'],
    ];

    it.each(valid)('accepts %s, URL-encoded, on every route', async (_name, raw) => {
      // Unique per run (the data dir is fresh per node) and still within the byte limit.
      const id = raw;
      const created = await api.create(id, { token_budget: 100 });
      expect(created.id).toBe(id);
      expect((await api.contextOk(id)).id).toBe(id);
      expect(await api.appendOk(id, textMessage('hi'))).toMatchObject({ seq: 1, version: 1 });
      const tail = await api.tailOk(id);
      expect(tail.map((message) => message.id)).toEqual([`${id}:1`]);
      expect((await api.exportOk(id)).messages).toEqual(tail);
      expect((await api.windowOk(id)).messages).toEqual(tail);
      expect(expectStatus<ContextView>(await api.patchMetadata(id, { metadata: { a: 1 } }), 200).id).toBe(id);
      expect(expectStatus<unknown>(await api.compact(id, { replacement: [] }), 200)).toEqual({ version: 2 });
      expect((await api.deleteContext(id)).status).toBe(204);
    });
  });

  describe('operations', () => {
    it('/health/live and /health/ready answer 200 {"status":"ok"}', async () => {
      for (const path of ['/health/live', '/health/ready']) {
        const response = await anonymous.call('GET', path);
        expect(expectStatus<unknown>(response, 200)).toEqual({ status: 'ok' });
        expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
      }
    });

    it('/metrics is Prometheus text counting appends, without context ids in labels', async () => {
      const id = uniqueId('metrics-context');
      await api.create(id);
      await api.appendOk(id, textMessage('counted', { role: 'user' }));
      await api.appendOk(id, textMessage('counted', { role: 'assistant' }));
      const response = await fetch(`${node.base}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type') ?? '').toMatch(/^text\/plain/);
      const text = await response.text();
      expect(text).toMatch(/^# TYPE fastpaca_messages_append_total counter$/m);
      const samples = text
        .split('\n')
        .filter((line) => line.startsWith('fastpaca_messages_append_total{'))
        .map((line) => ({
          labels: line.slice(line.indexOf('{'), line.lastIndexOf('}') + 1),
          value: Number(line.split(' ').pop()),
        }));
      const userSamples = samples.filter((sample) => sample.labels.includes('role="user"'));
      expect(userSamples.length).toBeGreaterThan(0);
      for (const sample of samples) expect(sample.labels).toMatch(/source="/);
      expect(userSamples.reduce((sum, sample) => sum + sample.value, 0)).toBeGreaterThanOrEqual(1);
      expect(samples.filter((sample) => sample.labels.includes('role="assistant"')).length).toBeGreaterThan(
        0,
      );
      expect(text).toMatch(/^fastpaca_messages_token_count_bucket\{/m);
      expect(text).not.toContain(id);
    });

    it('/metrics scrapes share renders yet never miss what happened before them', async () => {
      const id = uniqueId('metrics-fresh');
      await api.create(id);
      const series = 'fastpaca_messages_append_total';
      // Scrapes right after one another (within one render interval), each after an append: every
      // one must count its append, so the coalescing never serves a render older than the scrape.
      let previous = await metricSum(node.base, series);
      for (let round = 0; round < 3; round++) {
        await api.appendOk(id, textMessage(`fresh ${round}`, { role: 'user' }));
        const current = await metricSum(node.base, series);
        expect(current).toBe(previous + 1);
        previous = current;
      }
      // A burst of scrapes all get the whole text.
      const burst = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const response = await fetch(`${node.base}/metrics`);
          return { status: response.status, text: await response.text() };
        }),
      );
      for (const { status, text } of burst) {
        expect(status).toBe(200);
        expect(text).toMatch(/^# TYPE fastpaca_messages_append_total counter$/m);
      }
    });

    it('/metrics times Raft turns and synced writes (the histograms are not left empty)', async () => {
      const turnsBefore = await metricSum(node.base, 'fastpaca_raft_turn_duration_seconds_count');
      const fsyncsBefore = await metricSum(node.base, 'fastpaca_raft_fsync_duration_seconds_count');
      const id = uniqueId('timed-context');
      await api.create(id);
      await api.appendOk(id, textMessage('timed', { role: 'user' }));
      expect(await metricSum(node.base, 'fastpaca_raft_turn_duration_seconds_count')).toBeGreaterThan(
        turnsBefore,
      );
      expect(await metricSum(node.base, 'fastpaca_raft_fsync_duration_seconds_count')).toBeGreaterThan(
        fsyncsBefore,
      );
    });

    it('/openapi.json is a valid JSON OpenAPI document with every /v1 path', async () => {
      const response = await anonymous.call('GET', '/openapi.json');
      const doc = expectStatus<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
        response,
        200,
      );
      expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      const expected: Record<string, string[]> = {
        '/v1/contexts/{id}': ['delete', 'get', 'put'],
        '/v1/contexts/{id}/metadata': ['patch'],
        '/v1/contexts/{id}/messages': ['get', 'post'],
        '/v1/contexts/{id}/tail': ['get'],
        '/v1/contexts/{id}/context': ['get'],
        '/v1/contexts/{id}/compact': ['post'],
        '/health/live': ['get'],
        '/health/ready': ['get'],
        '/metrics': ['get'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        const operations = doc.paths[path];
        expect({ path, defined: operations !== undefined }).toEqual({ path, defined: true });
        expect(
          Object.keys(operations ?? {})
            .filter((key) => methods.includes(key))
            .sort(),
        ).toEqual(methods);
      }
    });
  });
});
