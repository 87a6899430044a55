// Contract (../shared/API.md, "Messages": tail and export) over real HTTP against a real node:
// limit/offset paging from the newest end, chronological order, the full-history export with
// from_seq/next_from_seq, and 400 invalid_query on bad integers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { MessagesPage } from '../../src/api/domain.js';
import {
  ContractClient,
  expectError,
  expectStatus,
  seqsOf,
  textMessage,
  uniqueId,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

describe('contract: tail and export', () => {
  let node: TestNode;
  let api: ContractClient;
  /** A context with messages m1..m7 (seq 1..7), shared by the read-only tests. */
  let seven: string;
  /** A context with 250 messages, for default and maximum page sizes. */
  let many: string;
  beforeAll(async () => {
    node = await startTestNode();
    api = new ContractClient(node.base);
    seven = uniqueId('seven');
    await api.create(seven);
    for (let n = 1; n <= 7; n++) await api.appendOk(seven, textMessage(`m${n}`));
    many = uniqueId('many');
    await api.create(many);
    // Concurrent appends: seqs are assigned in commit order, so the texts may be out of order.
    for (let batch = 0; batch < 5; batch++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, n) => api.appendOk(many, textMessage(`b${batch}-${n}`))),
      );
    }
  }, 60_000);
  afterAll(async () => {
    expect(node.fatalErrors).toEqual([]);
    await node.destroy();
  });

  describe('tail', () => {
    const pages: readonly (readonly [string, number[]])[] = [
      ['', [1, 2, 3, 4, 5, 6, 7]],
      ['limit=3', [5, 6, 7]],
      ['limit=3&offset=0', [5, 6, 7]],
      ['limit=3&offset=2', [3, 4, 5]],
      ['offset=2', [1, 2, 3, 4, 5]],
      ['limit=3&offset=5', [1, 2]],
      ['limit=1&offset=6', [1]],
      ['limit=1', [7]],
      ['limit=1000', [1, 2, 3, 4, 5, 6, 7]],
      ['offset=7', []],
      ['limit=5&offset=100', []],
      ['offset=999999999999999', []],
      ['offset=2&limit=3', [3, 4, 5]],
      ['limit=3&unknown=x', [5, 6, 7]],
    ];

    it.each(pages)('?%s answers the right page in chronological order', async (query, seqs) => {
      const messages = await api.tailOk(seven, query);
      expect(seqsOf(messages)).toEqual(seqs);
      expect(messages.map((message) => message.parts)).toEqual(
        seqs.map((seq) => [{ type: 'text', text: `m${seq}` }]),
      );
    });

    it('answers {"messages": []} for an unknown id', async () => {
      const response = await api.tail(uniqueId('unknown'));
      expect(expectStatus<unknown>(response, 200)).toEqual({ messages: [] });
      expect(await api.tailOk(uniqueId('unknown'), 'limit=5&offset=3')).toEqual([]);
    });

    it('defaults to the newest 100 and caps at 1000', async () => {
      expect(seqsOf(await api.tailOk(many))).toEqual(range(151, 250));
      expect(seqsOf(await api.tailOk(many, 'limit=1000'))).toEqual(range(1, 250));
      expect(seqsOf(await api.tailOk(many, 'limit=10&offset=240'))).toEqual(range(1, 10));
    });

    const badQueries = [
      'limit=0',
      'limit=1001',
      'limit=-1',
      'limit=abc',
      'limit=1.5',
      'limit=',
      'limit=1e2',
      'limit=%20',
      'offset=-1',
      'offset=x',
      'offset=',
      'offset=0x10',
      'limit=99999999999999999999',
    ];

    it.each(badQueries)('?%s answers 400 invalid_query', async (query) => {
      expectError(await api.tail(seven, query), 400, 'invalid_query');
    });

    it('accepts every safe integer its OpenAPI schema allows (offset up to 2^53 - 1)', async () => {
      expect(await api.tailOk(seven, `offset=${Number.MAX_SAFE_INTEGER}`)).toEqual([]);
      expectError(await api.tail(seven, `offset=${Number.MAX_SAFE_INTEGER + 1}`), 400, 'invalid_query');
    });

    it('checks the query of an unknown id too', async () => {
      expectError(await api.tail(uniqueId('unknown'), 'limit=0'), 400, 'invalid_query');
    });
  });

  describe('export /messages', () => {
    it('answers everything ascending without next_from_seq when nothing remains', async () => {
      const page = await api.exportOk(seven);
      expect(seqsOf(page.messages)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(Object.keys(page)).toEqual(['messages']);
      expect(page.messages).toEqual(await api.tailOk(seven));
    });

    const pages: readonly (readonly [string, number[], number | undefined])[] = [
      ['from_seq=0&limit=3', [1, 2, 3], 3],
      ['from_seq=3&limit=3', [4, 5, 6], 6],
      ['from_seq=6&limit=3', [7], undefined],
      ['from_seq=4&limit=3', [5, 6, 7], undefined],
      ['from_seq=2', [3, 4, 5, 6, 7], undefined],
      ['limit=7', [1, 2, 3, 4, 5, 6, 7], undefined],
      ['limit=6', [1, 2, 3, 4, 5, 6], 6],
      ['from_seq=7', [], undefined],
      ['from_seq=1000', [], undefined],
    ];

    it.each(pages)('?%s answers seqs %j, next_from_seq %s', async (query, seqs, next) => {
      const page = await api.exportOk(seven, query);
      expect(seqsOf(page.messages)).toEqual(seqs);
      if (next === undefined) expect(page).not.toHaveProperty('next_from_seq');
      else expect(page.next_from_seq).toBe(next);
    });

    it('following next_from_seq visits every message exactly once, in order', async () => {
      const seen: number[] = [];
      let fromSeq = 0;
      for (let pageCount = 0; pageCount < 100; pageCount++) {
        const page: MessagesPage = await api.exportOk(many, `from_seq=${fromSeq}&limit=37`);
        seen.push(...seqsOf(page.messages));
        if (page.next_from_seq === undefined) break;
        expect(page.next_from_seq).toBe(page.messages[page.messages.length - 1]?.seq);
        fromSeq = page.next_from_seq;
      }
      expect(seen).toEqual(range(1, 250));
    });

    it('defaults to 100 per page', async () => {
      const page = await api.exportOk(many);
      expect(seqsOf(page.messages)).toEqual(range(1, 100));
      expect(page.next_from_seq).toBe(100);
    });

    it('answers 404 context_not_found for an unknown id', async () => {
      expectError(await api.exportMessages(uniqueId('unknown')), 404, 'context_not_found');
    });

    it.each(['from_seq=-1', 'from_seq=x', 'limit=0', 'limit=1001', 'limit=abc', 'from_seq=1.5'])(
      '?%s answers 400 invalid_query',
      async (query) => {
        expectError(await api.exportMessages(seven, query), 400, 'invalid_query');
      },
    );
  });
});

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);
