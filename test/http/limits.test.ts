// Proves the request limits and body handling over real HTTP: 413 for bodies over the limit, both
// declared (Content-Length) and streamed (chunked, refused mid-stream), 415 for non-JSON bodies,
// invalid_json for unparsable ones, multi-chunk bodies reassembled intact, and the size, count and
// depth limits on messages and metadata; none of the refused requests reaches the service.

import { request } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let tight: TestServer;
let roomy: TestServer;

beforeAll(async () => {
  tight = await startTestServer({
    limits: {
      bodyBytesMax: 2048,
      partsPerMessageMax: 3,
      nameLengthMax: 16,
      metadataBytesMax: 64,
      jsonDepthMax: 4,
    },
  });
  roomy = await startTestServer();
  for (const server of [tight, roomy]) {
    await call(server.base, 'PUT', '/v1/contexts/c', { json: { token_budget: 1000 } });
  }
});

afterAll(async () => {
  await Promise.all([tight.close(), roomy.close()]);
});

const appendPath = '/v1/contexts/c/messages';
const message = (parts: unknown[], extra: object = {}) => ({ message: { role: 'user', parts, ...extra } });

/** Sends a chunked (no Content-Length) body in the given pieces and collects the answer. */
const sendChunked = (port: number, path: string, pieces: readonly string[]) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // The server may close before the last piece once it has refused the body.
    req.on('error', reject);
    for (const piece of pieces) req.write(piece);
    req.end();
  });

describe('body size', () => {
  it('refuses a declared body over the limit with 413, without calling the service', async () => {
    const calls = tight.service.calls.length;
    const big = JSON.stringify(message([{ type: 'text', text: 'x'.repeat(4096) }]));
    const response = await call(tight.base, 'POST', appendPath, { rawBody: big });
    expect(response.status).toBe(413);
    expect(response.body).toEqual({
      error: 'payload_too_large',
      message: 'The request body exceeds 2048 bytes',
    });
    expect(tight.service.calls.length).toBe(calls);
    // The refused connection is closed; the next request gets a fresh one and works.
    expect((await call(tight.base, 'GET', '/health/live')).status).toBe(200);
  });

  it('refuses a streamed body as soon as it crosses the limit', async () => {
    const calls = tight.service.calls.length;
    const pieces = [
      '{"message":{"role":"user","parts":[{"type":"text","text":"',
      ...Array<string>(8).fill('y'.repeat(512)),
    ];
    const response = await sendChunked(tight.port, appendPath, pieces);
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toMatchObject({ error: 'payload_too_large' });
    expect(tight.service.calls.length).toBe(calls);
  });

  it('reassembles a body that arrives in many chunks', async () => {
    const json = JSON.stringify(message([{ type: 'text', text: 'é'.repeat(300) }]));
    const pieces = Array.from({ length: Math.ceil(json.length / 50) }, (_, i) =>
      json.slice(i * 50, i * 50 + 50),
    );
    const response = await sendChunked(tight.port, appendPath, pieces);
    expect(response.status).toBe(201);
    const tail = await call(tight.base, 'GET', '/v1/contexts/c/tail?limit=1');
    expect(tail.body).toMatchObject({ messages: [{ parts: [{ type: 'text', text: 'é'.repeat(300) }] }] });
  });

  it('refuses 1 MiB + 1 byte under the default limit and accepts a body just under it', async () => {
    const padding = (bytes: number) => {
      const skeleton = JSON.stringify(message([{ type: 'text', text: '' }]));
      return JSON.stringify(message([{ type: 'text', text: 'z'.repeat(bytes - skeleton.length) }]));
    };
    const over = await call(roomy.base, 'POST', appendPath, { rawBody: padding(1024 * 1024 + 1) });
    expect(over.status).toBe(413);
    const under = await call(roomy.base, 'POST', appendPath, { rawBody: padding(1024 * 1024) });
    expect(under.status).toBe(201);
  });
});

describe('content type and JSON', () => {
  it('answers 415 for bodies that are not application/json', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', '']) {
      const response = await fetch(`${tight.base}${appendPath}`, {
        method: 'POST',
        headers: contentType === '' ? {} : { 'content-type': contentType },
        body: contentType === '' ? null : '{}',
      });
      expect(response.status, contentType).toBe(415);
      expect(await response.json()).toEqual({
        error: 'unsupported_media_type',
        message: 'Request bodies must be application/json',
      });
    }
  });

  it('accepts application/json with parameters and in any case', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'Application/JSON']) {
      const response = await fetch(`${tight.base}${appendPath}`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: JSON.stringify(message([{ type: 'text' }])),
      });
      expect(response.status, contentType).toBe(201);
    }
  });

  it('answers invalid_json for unparsable and empty bodies', async () => {
    for (const rawBody of ['{', '', 'nul', '{"message":}', '\u0000']) {
      const response = await call(tight.base, 'PUT', '/v1/contexts/j', { rawBody });
      expect(response.status, JSON.stringify(rawBody)).toBe(400);
      expect(response.body).toEqual({ error: 'invalid_json', message: 'The request body is not valid JSON' });
    }
  });
});

describe('message and metadata limits', () => {
  it('limits parts per message, name lengths and metadata size', async () => {
    const cases: [unknown, string][] = [
      [message(Array(4).fill({ type: 't' })), 'message.parts must NOT have more than 3 items'],
      [
        { message: { role: 'r'.repeat(17), parts: [{ type: 't' }] } },
        'message.role must NOT have more than 16 characters',
      ],
      [message([{ type: 't' }], { metadata: { note: 'm'.repeat(80) } }), 'message.metadata exceeds 64 bytes'],
      [message([{ type: 't', a: { b: { c: { d: [] } } } }]), 'message.parts[0] is nested deeper than 4'],
    ];
    const calls = tight.service.calls.length;
    for (const [json, detail] of cases) {
      const response = await call(tight.base, 'POST', appendPath, { json });
      expect(response.status, detail).toBe(400);
      expect(response.body).toEqual({ error: 'invalid_message', message: `Invalid message: ${detail}` });
    }
    const atLimits = message([{ type: 't', a: { b: { c: { d: 1 } } } }], {
      metadata: { note: 'm'.repeat(40) },
    });
    expect((await call(tight.base, 'POST', appendPath, { json: atLimits })).status).toBe(201);
    const put = await call(tight.base, 'PUT', '/v1/contexts/c', {
      json: { metadata: { k: 'v'.repeat(80) } },
    });
    expect(put.body).toEqual({
      error: 'invalid_context_config',
      message: 'Invalid context config: metadata exceeds 64 bytes',
    });
    const patch = await call(tight.base, 'PATCH', '/v1/contexts/c/metadata', {
      json: { metadata: { a: { b: { c: { d: {} } } } } },
    });
    expect(patch.body).toEqual({
      error: 'invalid_metadata',
      message: 'Invalid metadata: metadata is nested deeper than 4',
    });
    expect(tight.service.calls.length).toBe(calls + 1);
  });

  it('refuses a pathologically deep part without overflowing the stack', async () => {
    const depth = 200_000;
    const deep = `{"message":{"role":"user","parts":[{"type":"t","x":${'['.repeat(depth)}${']'.repeat(depth)}}]}}`;
    const response = await call(roomy.base, 'POST', appendPath, { rawBody: deep });
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'invalid_message',
      message: 'Invalid message: message.parts[0] is nested deeper than 64',
    });
  });
});
