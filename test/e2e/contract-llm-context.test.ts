// Contract (../shared/API.md, "LLM context") over real HTTP against a real node: the window read
// (used_tokens, needs_compaction, budget_tokens, if_version, segments, metadata) and the policies
// last_n, skip_parts and manual firing exactly when used_tokens crosses budget × trigger_ratio.
// Budgets and ratios are chosen so the threshold is exact in binary floating point.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { LlmContextView, StoredMessage } from '../../src/api/domain.js';
import {
  ContractClient,
  countedMessage,
  expectError,
  expectStatus,
  partTokens,
  seqsOf,
  tokensOf,
  uniqueId,
  type WireMessage,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('contract: LLM context and policies', () => {
  let node: TestNode;
  let api: ContractClient;
  beforeAll(async () => {
    node = await startTestNode();
    api = new ContractClient(node.base);
  }, 30_000);
  afterAll(async () => {
    expect(node.fatalErrors).toEqual([]);
    await node.destroy();
  });

  /** Appends messages of the given client token counts; answers the append bodies. */
  const appendCounts = async (id: string, counts: readonly number[]) => {
    const results = [];
    for (const tokens of counts) results.push(await api.appendOk(id, countedMessage(tokens)));
    return results;
  };

  /** The message log is never touched by a policy: tail and export hold every appended message. */
  const expectFullLog = async (id: string, lastSeq: number, messages?: readonly StoredMessage[]) => {
    const tail = await api.tailOk(id, 'limit=1000');
    expect(seqsOf(tail)).toEqual(range(1, lastSeq));
    expect((await api.exportOk(id, 'limit=1000')).messages).toEqual(tail);
    if (messages !== undefined) expect(tail).toEqual(messages);
  };

  describe('the window read', () => {
    it('of a new context is empty', async () => {
      const id = uniqueId('empty');
      await api.create(id, { token_budget: 100 });
      const response = await api.llmContext(id);
      expect(expectStatus<LlmContextView>(response, 200)).toEqual({
        version: 0,
        messages: [],
        used_tokens: 0,
        token_count: 0,
        needs_compaction: false,
        segments: [],
        metadata: {},
      });
    });

    it('holds the appended messages: used_tokens == token_count == sum of the window, one live segment', async () => {
      const id = uniqueId('window');
      await api.create(id, { token_budget: 10_000 });
      await appendCounts(id, [10, 20, 30, 40]);
      const window = await api.windowOk(id);
      expect(window).toEqual({
        version: 4,
        messages: await api.tailOk(id),
        used_tokens: 100,
        token_count: 100,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 1, to_seq: 4 }],
        metadata: {},
      });
      expect(tokensOf(window.messages)).toBe(100);
    });

    it('answers 404 context_not_found for an unknown id', async () => {
      expectError(await api.llmContext(uniqueId('missing')), 404, 'context_not_found');
    });

    it('needs_compaction is used_tokens > budget × trigger_ratio, against the current config', async () => {
      const id = uniqueId('flag');
      await api.create(id, { token_budget: 100, trigger_ratio: 0.5, policy: { strategy: 'manual' } });
      await appendCounts(id, [25, 25]);
      expect(await api.windowOk(id)).toMatchObject({ used_tokens: 50, needs_compaction: false });
      await appendCounts(id, [1]);
      expect(await api.windowOk(id)).toMatchObject({ used_tokens: 51, needs_compaction: true });
      await api.putContext(id, { trigger_ratio: 0.75 });
      expect(await api.windowOk(id)).toMatchObject({ used_tokens: 51, needs_compaction: false });
      await api.putContext(id, { token_budget: 64 });
      expect(await api.windowOk(id)).toMatchObject({ used_tokens: 51, needs_compaction: true });
    });

    it('budget_tokens answers the newest suffix that fits and judges the flag against it', async () => {
      const id = uniqueId('budget');
      await api.create(id, { token_budget: 10_000, trigger_ratio: 0.5, policy: { strategy: 'manual' } });
      await appendCounts(id, [10, 20, 30, 40]);
      const all = await api.tailOk(id);

      const wide = await api.windowOk(id, 'budget_tokens=1000');
      expect(wide).toMatchObject({
        messages: all,
        used_tokens: 100,
        token_count: 100,
        needs_compaction: false,
      });

      const fitsAll = await api.windowOk(id, 'budget_tokens=150');
      expect(fitsAll).toMatchObject({
        messages: all,
        used_tokens: 100,
        token_count: 100,
        needs_compaction: true,
      });

      const exact = await api.windowOk(id, 'budget_tokens=70');
      expect(exact).toMatchObject({
        version: 4,
        messages: all.slice(2),
        used_tokens: 70,
        token_count: 70,
        needs_compaction: true,
        segments: [{ type: 'live', from_seq: 3, to_seq: 4 }],
      });

      const oneLess = await api.windowOk(id, 'budget_tokens=69');
      expect(oneLess).toMatchObject({
        messages: all.slice(3),
        used_tokens: 40,
        token_count: 40,
        needs_compaction: true,
        segments: [{ type: 'live', from_seq: 4, to_seq: 4 }],
      });

      const none = await api.windowOk(id, 'budget_tokens=39');
      expect(none).toMatchObject({ messages: [], used_tokens: 0, token_count: 0, segments: [] });

      // The override is for one read only.
      expect(await api.windowOk(id)).toMatchObject({
        messages: all,
        used_tokens: 100,
        needs_compaction: false,
      });
    });

    it('if_version equal to the current version answers; a stale one is 409 conflict naming both', async () => {
      const id = uniqueId('read-if-version');
      await api.create(id, { token_budget: 1000 });
      await appendCounts(id, [1, 1, 1, 1]);
      expect((await api.windowOk(id, 'if_version=4')).version).toBe(4);
      expectError(
        await api.llmContext(id, 'if_version=3'),
        409,
        'conflict',
        'Context version changed (expected 3, found 4)',
      );
      expect((await api.windowOk(id, 'budget_tokens=2&if_version=4')).messages).toHaveLength(2);
    });

    it.each([
      'budget_tokens=0',
      'budget_tokens=-5',
      'budget_tokens=abc',
      'budget_tokens=',
      'if_version=-1',
      'if_version=x',
    ])('?%s answers 400 invalid_query', async (query) => {
      const id = uniqueId('bad-query');
      await api.create(id, { token_budget: 1000 });
      expectError(await api.llmContext(id, query), 400, 'invalid_query');
    });
  });

  describe('last_n', () => {
    it('fires exactly when the threshold is crossed and keeps the newest messages within it', async () => {
      const id = uniqueId('last-n');
      // threshold = 100 × 0.5 = 50
      await api.create(id, {
        token_budget: 100,
        trigger_ratio: 0.5,
        policy: { strategy: 'last_n', config: { limit: 200 } },
      });
      const results = await appendCounts(id, [10, 10, 10, 10, 10]);
      expect(results.map((result) => result.version)).toEqual([1, 2, 3, 4, 5]);
      expect(await api.windowOk(id)).toMatchObject({
        version: 5,
        used_tokens: 50,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 1, to_seq: 5 }],
        metadata: {},
      });
      const log = await api.tailOk(id);

      // 60 > 50: the policy runs; still one version for the append (the contract: version == last_seq).
      expect(await api.appendOk(id, countedMessage(10))).toEqual({ seq: 6, version: 6, token_estimate: 10 });
      const window = await api.windowOk(id);
      expect(window).toMatchObject({
        version: 6,
        used_tokens: 50,
        token_count: 50,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 2, to_seq: 6 }],
        metadata: { policy: 'last_n', removed_messages: 1 },
      });
      expect(seqsOf(window.messages)).toEqual([2, 3, 4, 5, 6]);
      expect(tokensOf(window.messages)).toBe(50);
      expect(await api.contextOk(id)).toMatchObject({ version: 6, last_seq: 6 });
      await expectFullLog(id, 6);
      expect((await api.tailOk(id)).slice(0, 5)).toEqual(log);
    });

    it('keeps at most config.limit messages once it runs', async () => {
      const id = uniqueId('last-n-limit');
      // threshold = 200 × 0.5 = 100; the limit only applies when the policy runs.
      await api.create(id, {
        token_budget: 200,
        trigger_ratio: 0.5,
        policy: { strategy: 'last_n', config: { limit: 3 } },
      });
      await appendCounts(
        id,
        Array.from({ length: 10 }, () => 10),
      );
      expect(await api.windowOk(id)).toMatchObject({
        version: 10,
        used_tokens: 100,
        needs_compaction: false,
      });
      expect(seqsOf((await api.windowOk(id)).messages)).toEqual(range(1, 10));

      expect(await api.appendOk(id, countedMessage(10))).toEqual({
        seq: 11,
        version: 11,
        token_estimate: 10,
      });
      const window = await api.windowOk(id);
      expect(seqsOf(window.messages)).toEqual([9, 10, 11]);
      expect(window).toMatchObject({
        used_tokens: 30,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 9, to_seq: 11 }],
        metadata: { policy: 'last_n', removed_messages: 8 },
      });
      await expectFullLog(id, 11);
    });

    it('keeps an oversized newest message alone rather than emptying the window', async () => {
      const id = uniqueId('last-n-oversized');
      await api.create(id, { token_budget: 100, trigger_ratio: 0.5 });
      await appendCounts(id, [10, 10]);
      // One append is one version, also when its policy run rewrites the window.
      expect(await api.appendOk(id, countedMessage(80))).toEqual({ seq: 3, version: 3, token_estimate: 80 });
      const window = await api.windowOk(id);
      expect(seqsOf(window.messages)).toEqual([3]);
      expect(window).toMatchObject({ used_tokens: 80, token_count: 80, needs_compaction: true });
      await expectFullLog(id, 3);
    });
  });

  describe('skip_parts', () => {
    const toolPart = {
      type: 'tool-search',
      toolCallId: 'c1',
      state: 'output-available',
      input: { q: 'raft' },
      output: { hits: 3 },
    };
    const reasoningPart = { type: 'reasoning', text: 'r'.repeat(60) };
    const m1: WireMessage = { role: 'assistant', parts: [{ type: 'text', text: 'a'.repeat(40) }, toolPart] };
    const m2: WireMessage = { role: 'assistant', parts: [reasoningPart] };
    const m3: WireMessage = { role: 'user', parts: [{ type: 'text', text: 'b'.repeat(40) }] };
    const m4: WireMessage = { role: 'user', parts: [{ type: 'text', text: 'cccc' }] };
    // With threshold = budget × 1 = the tokens of m1..m3, m3 lands exactly on it and m4 crosses it.
    const toolTokens = partTokens(toolPart);
    const reasoningTokens = partTokens(reasoningPart);
    const threshold = 10 + toolTokens + reasoningTokens + 10;

    /** Appends m1..m3 (exactly at the threshold: nothing happens), then m4 (over: the policy runs). */
    const crossWith = async (id: string, config: Record<string, unknown>) => {
      await api.create(id, {
        token_budget: threshold,
        trigger_ratio: 1,
        policy: { strategy: 'skip_parts', config },
      });
      for (const message of [m1, m2, m3]) await api.appendOk(id, message);
      const before = await api.windowOk(id);
      expect(before).toMatchObject({
        version: 3,
        used_tokens: threshold,
        needs_compaction: false,
        metadata: {},
      });
      expect(before.messages.map((message) => message.parts)).toEqual([m1.parts, m2.parts, m3.parts]);
      const log = await api.tailOk(id);
      const crossing = await api.appendOk(id, m4);
      expect(crossing).toEqual({ seq: 4, version: 4, token_estimate: 1 });
      const window = await api.windowOk(id);
      expect(window.version).toBe(4);
      expect(window.used_tokens).toBe(tokensOf(window.messages));
      expect(window.token_count).toBe(window.used_tokens);
      await expectFullLog(id, 4);
      expect((await api.tailOk(id)).slice(0, 3)).toEqual(log);
      return window;
    };

    it('drops tool* and reasoning* parts by default, then messages left without parts', async () => {
      const window = await crossWith(uniqueId('skip-parts'), {});
      expect(seqsOf(window.messages)).toEqual([1, 3, 4]);
      expect(window.messages.map((message) => message.parts)).toEqual([
        [{ type: 'text', text: 'a'.repeat(40) }],
        m3.parts,
        m4.parts,
      ]);
      expect(window.messages.map((message) => message.token_count)).toEqual([10, 10, 1]);
      expect(window).toMatchObject({
        used_tokens: 21,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 1, to_seq: 4 }],
        metadata: { policy: 'skip_parts', removed_parts: 2, removed_messages: 1 },
      });
    });

    it('then applies last_n with config.limit', async () => {
      const window = await crossWith(uniqueId('skip-parts-limit'), { limit: 2 });
      expect(seqsOf(window.messages)).toEqual([3, 4]);
      expect(window).toMatchObject({
        used_tokens: 11,
        needs_compaction: false,
        segments: [{ type: 'live', from_seq: 3, to_seq: 4 }],
        metadata: { policy: 'skip_parts', removed_parts: 2, removed_messages: 2 },
      });
    });

    it('drops only the configured skip_kinds prefixes', async () => {
      const window = await crossWith(uniqueId('skip-parts-kinds'), { skip_kinds: ['reason'] });
      expect(seqsOf(window.messages)).toEqual([1, 3, 4]);
      expect(window.messages[0]?.parts).toEqual(m1.parts);
      expect(window).toMatchObject({
        used_tokens: 10 + toolTokens + 10 + 1,
        metadata: { policy: 'skip_parts', removed_parts: 1, removed_messages: 1 },
      });
    });
  });

  describe('manual', () => {
    it('lets the flag rise and drops nothing', async () => {
      const id = uniqueId('manual');
      await api.create(id, { token_budget: 100, trigger_ratio: 0.5, policy: { strategy: 'manual' } });
      const results = await appendCounts(id, [10, 10, 10, 10, 10]);
      expect(await api.windowOk(id)).toMatchObject({ used_tokens: 50, needs_compaction: false });
      results.push(...(await appendCounts(id, [10, 10, 10, 10, 10])));
      expect(results.map((result) => result.version)).toEqual(range(1, 10));
      const window = await api.windowOk(id);
      expect(window).toEqual({
        version: 10,
        messages: await api.tailOk(id),
        used_tokens: 100,
        token_count: 100,
        needs_compaction: true,
        segments: [{ type: 'live', from_seq: 1, to_seq: 10 }],
        metadata: {},
      });
      await expectFullLog(id, 10);
    });
  });
});
