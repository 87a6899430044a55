// Below the free-space floor a node refuses writes (507 insufficient_storage) before its store could
// fail, keeps serving reads, changes nothing, and takes writes again once space is back. The disk is
// simulated through the node's free-space probe; the floor and the poll are the production code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestNode, type TestNode } from './node-harness.js';

const floor = 64 * 1024 * 1024;
let freeBytes = 10 * floor;
let node: TestNode;

const send = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${node.base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const parsed: unknown = text === '' ? undefined : JSON.parse(text);
  return { status: response.status, body: parsed };
};

const append = (text: string) =>
  send('POST', '/v1/contexts/disk/messages', { message: { role: 'user', parts: [{ type: 'text', text }] } });

/** Bounded wait until the guard (polling once a second) has seen the new free space. */
const eventually = async (check: () => Promise<boolean>): Promise<void> => {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

beforeAll(async () => {
  node = await startTestNode({
    env: { FASTPACA_DISK_FREE_MIN_BYTES: String(floor) },
    diskFreeBytes: async () => freeBytes,
  });
  expect((await send('PUT', '/v1/contexts/disk', { token_budget: 1000 })).status).toBe(201);
  expect((await append('before')).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await node.destroy();
});

describe('free disk space floor', () => {
  it('refuses writes with 507 below the floor, serves reads, and takes writes again above it', async () => {
    freeBytes = floor - 1;
    // Appends sent before the next poll still land; from then on every write is refused.
    await eventually(async () => (await append('probe')).status === 507);
    const before = await send('GET', '/v1/contexts/disk/tail?limit=100');
    expect((await append('while low')).status).toBe(507);
    const refused = await send('PATCH', '/v1/contexts/disk/metadata', { metadata: { a: 1 } });
    expect(refused).toMatchObject({ status: 507, body: { error: 'insufficient_storage' } });
    expect((await send('PUT', '/v1/contexts/other', { token_budget: 10 })).status).toBe(507);
    // Reads go on, and nothing changed.
    expect(await send('GET', '/v1/contexts/disk/tail?limit=100')).toEqual(before);
    expect((await send('GET', '/v1/contexts/other')).status).toBe(404);
    expect((await send('GET', '/health/ready')).status).toBe(200);

    freeBytes = floor * 2;
    await eventually(async () => (await append('after')).status === 201);
    const texts = (page: unknown): string[] =>
      (page as { messages: { parts: { text: string }[] }[] }).messages.map(
        (message) => message.parts[0]?.text ?? '',
      );
    const tail = (await send('GET', '/v1/contexts/disk/tail?limit=100')).body;
    expect(texts(tail)).toEqual([...texts(before.body), 'after']);
    expect(texts(tail).filter((text) => text === 'while low')).toEqual([]);
    expect(node.fatalErrors).toEqual([]);
  }, 30_000);
});
