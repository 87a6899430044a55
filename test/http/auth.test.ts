// Proves Bearer authentication over real HTTP: with keys configured every /v1 route needs one of
// them (401 + WWW-Authenticate otherwise, before the service is called), any of several keys works
// (rotation), health/metrics/openapi stay open, and with no keys nothing is required.

import { isIPv4, isIPv6 } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestServer } from './harness.js';
import { allowedWithoutKey } from '../../src/http/auth.js';
import { call, startTestServer } from './harness.js';

describe('with API keys configured', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: ['old-key', 'new-key-that-is-longer'] });
  });

  afterAll(async () => {
    await server.close();
  });

  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

  it('refuses /v1 requests without a valid key with 401 and WWW-Authenticate, calling nothing', async () => {
    const attempts: (Record<string, string> | undefined)[] = [
      undefined,
      bearer('wrong'),
      bearer('old-ke'),
      bearer('old-key-'),
      { authorization: 'Basic b2xkLWtleQ==' },
      { authorization: 'old-key' },
    ];
    for (const headers of attempts) {
      for (const [method, path, json] of [
        ['GET', '/v1/contexts/a', undefined],
        ['PUT', '/v1/contexts/a', { token_budget: 10 }],
        ['GET', '/v1/contexts/a/tail', undefined],
        ['POST', '/v1/contexts/a/messages', { message: { role: 'user', parts: [{ type: 'text' }] } }],
      ] as const) {
        const response = await call(server.base, method, path, {
          ...(headers === undefined ? {} : { headers }),
          ...(json === undefined ? {} : { json }),
        });
        expect(response.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get('www-authenticate')).toBe('Bearer');
        expect(response.body).toMatchObject({ error: 'unauthorized' });
      }
    }
    expect(server.service.calls).toEqual([]);
  });

  it('accepts every configured key, so keys can be rotated', async () => {
    const created = await call(server.base, 'PUT', '/v1/contexts/rot', {
      json: { token_budget: 10 },
      headers: bearer('old-key'),
    });
    expect(created.status).toBe(201);
    const read = await call(server.base, 'GET', '/v1/contexts/rot', {
      headers: bearer('new-key-that-is-longer'),
    });
    expect(read.status).toBe(200);
    const lowerScheme = await call(server.base, 'GET', '/v1/contexts/rot', {
      headers: { authorization: 'bearer old-key' },
    });
    expect(lowerScheme.status).toBe(200);
  });

  it('leaves health, metrics and openapi open', async () => {
    for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      expect((await fetch(`${server.base}${path}`)).status, path).toBe(200);
    }
  });
});

describe('without API keys', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: [] });
  });

  afterAll(async () => {
    await server.close();
  });

  it('serves /v1 without a key and warned about it at start-up', async () => {
    const response = await call(server.base, 'PUT', '/v1/contexts/open', { json: { token_budget: 10 } });
    expect(response.status).toBe(201);
    const ignored = await call(server.base, 'GET', '/v1/contexts/open', {
      headers: { authorization: 'Bearer x' },
    });
    expect(ignored.status).toBe(200);
    expect(server.logs.some((entry) => entry.level === 'warn')).toBe(true);
  });
});

/** An address as uWS's getRemoteAddress gives it: 4 bytes for IPv4 text, 16 for IPv6 text. */
const addressBytes = (text: string): Uint8Array => {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) return new Uint8Array(0);
  const [head = '', tail] = text.split('::');
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const words = (part: string): number[] =>
    groupsOf(part).flatMap((group) =>
      isIPv4(group)
        ? [
            Number(group.split('.')[0]) * 256 + Number(group.split('.')[1]),
            Number(group.split('.')[2]) * 256 + Number(group.split('.')[3]),
          ]
        : [parseInt(group, 16)],
    );
  const front = words(head);
  const back = tail === undefined ? [] : words(tail);
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  return Uint8Array.from(all.flatMap((word) => [word >> 8, word & 0xff]));
};

describe('protected mode (no API key)', () => {
  it('serves /v1 without a key to loopback clients only, unless turned off', () => {
    // The bytes these cases are given (the helper is checked, or a wrong one could pass them all).
    expect([...addressBytes('::ffff:127.0.0.1')]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1,
    ]);
    expect([...addressBytes('fd00::2')]).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    expect([...addressBytes('127.8.9.10')]).toEqual([127, 8, 9, 10]);
    for (const local of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      expect(allowedWithoutKey(addressBytes(local), true), local).toBe(true);
    }
    for (const remote of [
      '10.0.0.1',
      '192.168.1.20',
      '::ffff:10.0.0.1',
      'fd00::2',
      '2001:db8::1',
      '128.0.0.1',
      '::2',
      '::127.0.0.1',
      '::ffff:128.0.0.1',
      '',
    ]) {
      expect(allowedWithoutKey(addressBytes(remote), true), remote).toBe(false);
      expect(allowedWithoutKey(addressBytes(remote), false), remote).toBe(true);
    }
  });

  it('answers a loopback client without a key, and says so in its start-up warning', async () => {
    const server = await startTestServer({ apiKeys: [] });
    try {
      expect((await call(server.base, 'GET', '/v1/contexts/c/tail')).status).toBe(200);
      const warning = server.logs.find(
        (entry) => (entry.object as { type?: string }).type === 'http_auth_disabled',
      );
      expect(warning?.message).toMatch(/this machine only \(protected mode\)/);
    } finally {
      await server.close();
    }
  });
});
