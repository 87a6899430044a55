// Per-key request rates: a token bucket per configured API key (429 rate_limited with Retry-After
// past it), refilled over time, independent between keys, and off unless configured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRateLimiter } from '../../src/http/rate-limit.js';
import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

describe('createRateLimiter', () => {
  it('lets a burst through, then refills at the rate, per key', () => {
    let clock = 0;
    const limiter = createRateLimiter(2, 2, 3, () => clock);
    expect(limiter).toBeDefined();
    const take = (key: number) => limiter?.take(key);
    expect([take(0), take(0), take(0)]).toEqual([undefined, undefined, undefined]);
    expect(take(0)).toBe(1); // empty: one more token in half a second, rounded up to a whole second
    expect(take(1)).toBeUndefined(); // another key has its own bucket
    clock += 500;
    expect(take(0)).toBeUndefined();
    expect(take(0)).toBe(1);
    clock += 10_000;
    // Refills up to the burst, never past it.
    expect([take(0), take(0), take(0), take(0)]).toEqual([undefined, undefined, undefined, 1]);
  });

  it('is off without a rate or without keys', () => {
    expect(createRateLimiter(2, 0, 1)).toBeUndefined();
    expect(createRateLimiter(0, 5, 5)).toBeUndefined();
  });
});

describe('rate_per_key over HTTP', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ apiKeys: ['key-one', 'key-two'], ratePerKey: 1, rateBurst: 2 });
  });

  afterAll(async () => {
    await server.close();
  });

  it('answers 429 with Retry-After past a key’s burst, leaves other keys and health alone', async () => {
    const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
    expect((await call(server.base, 'GET', '/v1/contexts/x', as('key-one'))).status).toBe(404);
    expect((await call(server.base, 'GET', '/v1/contexts/x', as('key-one'))).status).toBe(404);
    const limited = await call(server.base, 'GET', '/v1/contexts/x', as('key-one'));
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: 'rate_limited' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await call(server.base, 'GET', '/v1/contexts/x', as('key-two'))).status).toBe(404);
    expect((await call(server.base, 'GET', '/health/live')).status).toBe(200);
    // A wrong key is refused as before, and costs no key's budget.
    expect((await call(server.base, 'GET', '/v1/contexts/x', as('nope'))).status).toBe(401);
  });
});
