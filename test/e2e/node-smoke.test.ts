// A real node end to end: create a context, append, read back, and survive a graceful restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestNode, type TestNode } from './node-harness.js';

describe('a single node', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode();
  }, 30_000);
  afterAll(async () => {
    await node.destroy();
  });

  it('creates a context, appends and reads back, and keeps it across a restart', async () => {
    const put = await call(node.base, 'PUT', '/v1/contexts/chat-1', { token_budget: 1000 });
    expect(put.status).toBe(201);
    const append = await call(node.base, 'POST', '/v1/contexts/chat-1/messages', {
      message: { role: 'user', parts: [{ type: 'text', text: 'hello there' }] },
    });
    expect(append.status).toBe(201);
    expect(append.body).toMatchObject({ seq: 1, version: 1 });
    const tail = await call(node.base, 'GET', '/v1/contexts/chat-1/tail');
    expect(tail.status).toBe(200);
    expect(tail.body).toMatchObject({ messages: [{ seq: 1, role: 'user', id: 'chat-1:1' }] });

    await node.stop();
    node = await startTestNode({ dataDir: node.dataDir });
    const again = await call(node.base, 'GET', '/v1/contexts/chat-1/tail');
    expect(again.body).toEqual(tail.body);
    expect(node.fatalErrors).toEqual([]);
  }, 30_000);
});
