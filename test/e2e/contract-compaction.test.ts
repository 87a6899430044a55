// Contract (../shared/API.md, "LLM context": compact) over real HTTP against a real node: the window
// is replaced atomically, version +1, if_version conflicts, invalid replacements, and the message
// log stays untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { LlmContextView } from '../../src/api/domain.js';
import {
  ContractClient,
  ISO_UTC,
  chars4,
  countedMessage,
  expectError,
  expectStatus,
  seqsOf,
  textMessage,
  tokensOf,
  uniqueId,
  type AppendBody,
  type WireMessage,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

const summary: WireMessage = {
  role: 'system',
  parts: [{ type: 'text', text: 'Summary of the conversation so far' }],
  token_count: 5,
  id: 'summary-1',
  metadata: { kind: 'summary' },
};
const uncounted: WireMessage = { role: 'assistant', parts: [{ type: 'text', text: 'abcdefghi' }] };

describe('contract: compaction', () => {
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

  const withMessages = async (prefix: string, count: number, config: Record<string, unknown> = {}) => {
    const id = uniqueId(prefix);
    await api.create(id, { token_budget: 10_000, ...config });
    for (let n = 0; n < count; n++) await api.appendOk(id, countedMessage(10));
    return id;
  };

  it('replaces the whole window: 200 {version}, version +1, token counts computed when absent', async () => {
    const id = await withMessages('compact', 4);
    const log = await api.tailOk(id);

    const response = await api.compact(id, { replacement: [summary, uncounted] });
    expect(expectStatus<unknown>(response, 200)).toEqual({ version: 5 });

    const window = await api.windowOk(id);
    expect(window).toMatchObject({
      version: 5,
      used_tokens: 5 + chars4('abcdefghi'),
      token_count: 5 + chars4('abcdefghi'),
      needs_compaction: false,
    });
    expect(window.messages).toEqual([
      {
        id: 'summary-1',
        seq: expect.any(Number) as unknown,
        role: 'system',
        parts: summary.parts,
        metadata: { kind: 'summary' },
        token_count: 5,
        inserted_at: expect.stringMatching(ISO_UTC) as unknown,
      },
      {
        id: expect.any(String) as unknown,
        seq: expect.any(Number) as unknown,
        role: 'assistant',
        parts: uncounted.parts,
        metadata: {},
        token_count: 3,
        inserted_at: expect.stringMatching(ISO_UTC) as unknown,
      },
    ]);
    expect(window.segments).toEqual([expect.objectContaining({ type: 'summary', from_seq: 1, to_seq: 4 })]);

    expect(await api.contextOk(id)).toMatchObject({ version: 5, last_seq: 4 });
    expect(await api.tailOk(id)).toEqual(log);
    expect((await api.exportOk(id)).messages).toEqual(log);

    // Appends continue after the summary: seq is untouched by compaction, version keeps counting.
    expect(await api.appendOk(id, countedMessage(10))).toEqual({ seq: 5, version: 6, token_estimate: 10 });
    const after = await api.windowOk(id);
    expect(after.messages.map((message) => message.id)).toEqual([
      'summary-1',
      window.messages[1]?.id,
      `${id}:5`,
    ]);
    expect(after).toMatchObject({ version: 6, used_tokens: 18, token_count: 18 });
    expect(after.segments).toEqual([
      expect.objectContaining({ type: 'summary' }),
      { type: 'live', from_seq: 5, to_seq: 5 },
    ]);
    expect(seqsOf(await api.tailOk(id))).toEqual([1, 2, 3, 4, 5]);
  });

  it('a second compaction replaces the first summary too', async () => {
    const id = await withMessages('compact-twice', 2);
    expect(expectStatus<unknown>(await api.compact(id, { replacement: [summary] }), 200)).toEqual({
      version: 3,
    });
    await api.appendOk(id, countedMessage(10));
    const second = textMessage('second summary', { role: 'system', token_count: 2 });
    expect(expectStatus<unknown>(await api.compact(id, { replacement: [second] }), 200)).toEqual({
      version: 5,
    });
    const window = await api.windowOk(id);
    expect(window.messages.map((message) => message.parts)).toEqual([second.parts]);
    expect(window).toMatchObject({ version: 5, used_tokens: 2, token_count: 2 });
    expect(window.segments).toEqual([expect.objectContaining({ type: 'summary', from_seq: 1, to_seq: 3 })]);
    expect(seqsOf(await api.tailOk(id))).toEqual([1, 2, 3]);
  });

  it('an empty replacement empties the window', async () => {
    const id = await withMessages('compact-empty', 3);
    expect(expectStatus<unknown>(await api.compact(id, { replacement: [] }), 200)).toEqual({ version: 4 });
    expect(await api.windowOk(id)).toMatchObject({
      version: 4,
      messages: [],
      used_tokens: 0,
      token_count: 0,
    });
    expect(seqsOf(await api.tailOk(id))).toEqual([1, 2, 3]);
  });

  it('the manual flow: the flag rises, the client compacts at the version it read, the flag drops', async () => {
    const id = uniqueId('compact-manual');
    await api.create(id, { token_budget: 100, trigger_ratio: 0.5, policy: { strategy: 'manual' } });
    for (let n = 0; n < 6; n++) await api.appendOk(id, countedMessage(10));
    const read = await api.windowOk(id);
    expect(read).toMatchObject({ version: 6, used_tokens: 60, needs_compaction: true });
    const replacement = [textMessage('short summary', { role: 'system', token_count: 8 })];
    const response = await api.compact(id, { replacement, if_version: read.version });
    expect(expectStatus<unknown>(response, 200)).toEqual({ version: 7 });
    expect(await api.windowOk(id)).toMatchObject({ version: 7, used_tokens: 8, needs_compaction: false });
  });

  it('summary messages count toward the threshold and a policy trims them first', async () => {
    const id = uniqueId('compact-policy');
    // threshold = 100 × 0.5 = 50
    await api.create(id, { token_budget: 100, trigger_ratio: 0.5 });
    await api.appendOk(id, countedMessage(10));
    await api.compact(id, { replacement: [textMessage('summary', { role: 'system', token_count: 40 })] });
    await api.appendOk(id, countedMessage(10)); // 50: not over
    expect((await api.windowOk(id)).used_tokens).toBe(50);
    await api.appendOk(id, countedMessage(10)); // 60: over, the oldest (the summary) goes
    const window = await api.windowOk(id);
    expect(seqsOf(window.messages)).toEqual([2, 3]);
    expect(window).toMatchObject({
      used_tokens: 20,
      needs_compaction: false,
      segments: [{ type: 'live', from_seq: 2, to_seq: 3 }],
    });
    expect(seqsOf(await api.tailOk(id))).toEqual([1, 2, 3]);
  });

  it('if_version: equal compacts, stale is 409 conflict naming both versions and changes nothing', async () => {
    const id = await withMessages('compact-if-version', 4);
    const before = await api.windowOk(id);
    expectError(
      await api.compact(id, { replacement: [summary], if_version: 3 }),
      409,
      'conflict',
      'Context version changed (expected 3, found 4)',
    );
    expect(await api.windowOk(id)).toEqual(before);
    expect(await api.contextOk(id)).toMatchObject({ version: 4 });
    const response = await api.compact(id, { replacement: [summary], if_version: 4 });
    expect(expectStatus<unknown>(response, 200)).toEqual({ version: 5 });
  });

  const invalidBodies: readonly (readonly [string, unknown])[] = [
    ['no replacement', {}],
    ['replacement not a list', { replacement: 'summary' }],
    ['replacement an object', { replacement: { role: 'system', parts: [{ type: 'text', text: 'x' }] } }],
    ['a message without role', { replacement: [{ parts: [{ type: 'text', text: 'x' }] }] }],
    ['a message without parts', { replacement: [{ role: 'system', parts: [] }] }],
    ['a part without type', { replacement: [{ role: 'system', parts: [{ text: 'x' }] }] }],
    [
      'a negative token_count',
      { replacement: [{ role: 'system', parts: [{ type: 'text' }], token_count: -1 }] },
    ],
    ['a bad second message', { replacement: [summary, { role: 'system' }] }],
    ['a negative if_version', { replacement: [summary], if_version: -1 }],
  ];

  it.each(invalidBodies)('refuses %s: 400 invalid_replacement, window unchanged', async (_name, body) => {
    const id = await withMessages('compact-invalid', 2);
    const before = await api.windowOk(id);
    expectError(await api.compact(id, body), 400, 'invalid_replacement');
    expect(await api.windowOk(id)).toEqual(before);
  });

  it('answers 404 context_not_found for a missing context', async () => {
    expectError(
      await api.compact(uniqueId('compact-missing'), { replacement: [summary] }),
      404,
      'context_not_found',
    );
  });

  it('is atomic with concurrent appends: the window is the replacement plus exactly the later appends', async () => {
    const id = await withMessages('compact-atomic', 3);
    const appends = Array.from({ length: 12 }, (_, n) => api.append(id, countedMessage(1, `racing ${n}`)));
    const compaction = api.compact(id, { replacement: [summary] });
    const results = (await Promise.all(appends)).map((response) => expectStatus<AppendBody>(response, 201));
    const { version } = expectStatus<{ version: number }>(await compaction, 200);

    const versions = [...results.map((result) => result.version), version].sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 13 }, (_, n) => 4 + n));
    const later = results.filter((result) => result.version > version).map((result) => result.seq);
    const window: LlmContextView = await api.windowOk(id);
    expect(window.messages[0]?.id).toBe('summary-1');
    expect(seqsOf(window.messages.slice(1))).toEqual(later.sort((a, b) => a - b));
    expect(window.used_tokens).toBe(tokensOf(window.messages));
    expect(window.used_tokens).toBe(5 + later.length);
    expect(window.version).toBe(16);
    expect(seqsOf(await api.tailOk(id))).toEqual(Array.from({ length: 15 }, (_, n) => n + 1));
  });
});
