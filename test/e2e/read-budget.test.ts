// Reads have a byte budget per page (FASTPACA_READ_PAGE_BYTES_MAX): /messages, /tail and /context stop
// at it and say how to continue, instead of building an answer of hundreds of MB. Paging through
// with the continuation gives back every message exactly once, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startTestNode, type TestNode } from './node-harness.js';

const pageBytes = 64 * 1024;
const messageCount = 12;
/** Each message's text: about a third of a page, so a page holds two or three. */
const textBytes = 24 * 1024;

let node: TestNode;

interface Stored {
  readonly seq: number;
  readonly parts: readonly { readonly text?: string }[];
}

const get = async <T>(path: string): Promise<T> => {
  const response = await fetch(`${node.base}${path}`);
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
};

beforeAll(async () => {
  node = await startTestNode({ env: { FASTPACA_READ_PAGE_BYTES_MAX: String(pageBytes) } });
  const put = await fetch(`${node.base}/v1/contexts/big`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token_budget: 10_000_000, policy: { strategy: 'manual' } }),
  });
  expect(put.status).toBe(201);
  for (let seq = 1; seq <= messageCount; seq++) {
    const text = String(seq % 10).repeat(textBytes);
    const response = await fetch(`${node.base}/v1/contexts/big/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } }),
    });
    expect(response.status).toBe(201);
  }
}, 60_000);

afterAll(async () => {
  await node.destroy();
});

describe('read page budget', () => {
  it('/messages pages stop at the budget and next_from_seq continues them to the end', async () => {
    const seqs: number[] = [];
    let fromSeq = 0;
    let pages = 0;
    for (; pages < messageCount + 1; pages++) {
      const page = await get<{ messages: Stored[]; next_from_seq?: number }>(
        `/v1/contexts/big/messages?from_seq=${fromSeq}&limit=1000`,
      );
      expect(page.messages.length).toBeGreaterThan(0);
      expect(page.messages.length).toBeLessThanOrEqual(3);
      seqs.push(...page.messages.map((message) => message.seq));
      if (page.next_from_seq === undefined) break;
      expect(page.next_from_seq).toBe(seqs[seqs.length - 1]);
      fromSeq = page.next_from_seq;
    }
    expect(seqs).toEqual(Array.from({ length: messageCount }, (_, i) => i + 1));
    expect(pages).toBeGreaterThan(3);
  });

  it('/tail returns the newest messages that fit, and next_offset continues older', async () => {
    const seqs: number[] = [];
    let offset = 0;
    for (let pages = 0; pages < messageCount + 1; pages++) {
      const limit = messageCount - seqs.length;
      const page = await get<{ messages: Stored[]; next_offset?: number }>(
        `/v1/contexts/big/tail?limit=${limit}&offset=${offset}`,
      );
      seqs.unshift(...page.messages.map((message) => message.seq));
      if (page.next_offset === undefined) break;
      expect(page.next_offset).toBe(offset + page.messages.length);
      offset = page.next_offset;
    }
    expect(seqs).toEqual(Array.from({ length: messageCount }, (_, i) => i + 1));
    // A tail that fits is answered as before, without next_offset.
    const small = await get<{ messages: Stored[]; next_offset?: number }>('/v1/contexts/big/tail?limit=2');
    expect(small).toEqual({ messages: expect.any(Array) as unknown });
    expect(small.messages.map((message) => message.seq)).toEqual([messageCount - 1, messageCount]);
  });

  it('/context returns the newest part of the window that fits, marked truncated', async () => {
    const view = await get<{
      messages: Stored[];
      truncated?: boolean;
      segments: { type: string; from_seq: number; to_seq: number }[];
    }>('/v1/contexts/big/context');
    expect(view.truncated).toBe(true);
    expect(view.messages.length).toBeGreaterThan(0);
    expect(view.messages.length).toBeLessThan(messageCount);
    const seqs = view.messages.map((message) => message.seq);
    expect(seqs[seqs.length - 1]).toBe(messageCount);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => messageCount - seqs.length + 1 + i));
    expect(view.segments).toEqual([{ type: 'live', from_seq: seqs[0], to_seq: messageCount }]);
  });
});
