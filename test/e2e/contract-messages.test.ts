// Contract (../shared/API.md, "Messages") over real HTTP against a real node: append results,
// seq/version progression, if_version, token estimates (chars4), idempotent appends, the stored
// message shape and opaque parts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { StoredMessage } from '../../src/api/domain.js';
import {
  ContractClient,
  ISO_UTC,
  chars4,
  countedMessage,
  expectError,
  expectStatus,
  partTokens,
  seqsOf,
  textMessage,
  uniqueId,
  type AppendBody,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

/** Parts shaped like the AI SDK's UIMessage parts (v5), plus awkward JSON values. */
const aiSdkParts = [
  { type: 'step-start' },
  {
    type: 'reasoning',
    text: 'The user wants the weather; call the tool.',
    providerMetadata: { openai: { itemId: 'rs_123' } },
  },
  {
    type: 'tool-getWeather',
    toolCallId: 'call_abc',
    state: 'output-available',
    input: { city: 'Zürich', units: 'metric' },
    output: { temperature: 21.5, conditions: ['sunny', 'windy'], alerts: null, raw: {} },
    providerExecuted: false,
  },
  { type: 'text', text: 'It is 21.5 °C and sunny in Zürich ☀️ — enjoy!\n\t"quoted"', state: 'done' },
  {
    type: 'source-url',
    sourceId: 'src-1',
    url: 'https://example.com/weather?q=z%C3%BCrich',
    title: 'Weather',
  },
  { type: 'file', mediaType: 'image/png', url: 'data:image/png;base64,iVBORw0KGgo=', filename: 'map.png' },
  {
    type: 'data-weather',
    id: 'w1',
    data: {
      nested: [
        [1, 2],
        [3, [4, { deep: true }]],
      ],
      big: 12345678901234,
    },
  },
] as const;

describe('contract: messages', () => {
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

  describe('append', () => {
    it('answers 201 {seq, version, token_estimate} and nothing else', async () => {
      const id = uniqueId('append');
      await api.create(id);
      const response = await api.append(id, textMessage('hello world!'));
      expect(expectStatus<AppendBody>(response, 201)).toEqual({ seq: 1, version: 1, token_estimate: 3 });
      expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
      expect(response.headers.get('idempotent-replayed')).toBeNull();
    });

    it('seq and version both start at 1 and grow by 1 per append', async () => {
      const id = uniqueId('progression');
      await api.create(id);
      for (let n = 1; n <= 6; n++) {
        expect(await api.appendOk(id, countedMessage(n))).toEqual({ seq: n, version: n, token_estimate: n });
      }
      expect(await api.contextOk(id)).toMatchObject({ version: 6, last_seq: 6 });
      expect(seqsOf(await api.tailOk(id))).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('seqs are per context', async () => {
      const a = uniqueId('per-context-a');
      const b = uniqueId('per-context-b');
      await api.create(a);
      await api.create(b);
      expect((await api.appendOk(a, textMessage('a1'))).seq).toBe(1);
      expect((await api.appendOk(a, textMessage('a2'))).seq).toBe(2);
      expect((await api.appendOk(b, textMessage('b1'))).seq).toBe(1);
    });

    it('if_version equal to the current version appends; a stale one is 409 conflict naming both', async () => {
      const id = uniqueId('if-version');
      await api.create(id);
      expect(await api.appendOk(id, countedMessage(1), { ifVersion: 0 })).toMatchObject({
        seq: 1,
        version: 1,
      });
      expect(await api.appendOk(id, countedMessage(1), { ifVersion: 1 })).toMatchObject({
        seq: 2,
        version: 2,
      });
      expectError(
        await api.append(id, countedMessage(1), { ifVersion: 1 }),
        409,
        'conflict',
        'Context version changed (expected 1, found 2)',
      );
      expectError(
        await api.append(id, countedMessage(1), { ifVersion: 83 }),
        409,
        'conflict',
        'Context version changed (expected 83, found 2)',
      );
      expect(await api.contextOk(id)).toMatchObject({ version: 2, last_seq: 2 });
      expect(await api.tailOk(id)).toHaveLength(2);
    });

    it('answers 404 context_not_found for a missing context (no auto-create)', async () => {
      const id = uniqueId('append-missing');
      expectError(await api.append(id, textMessage('hi')), 404, 'context_not_found');
      expectError(await api.getContext(id), 404, 'context_not_found');
      expect(await api.tailOk(id)).toEqual([]);
    });

    const invalidMessages: readonly (readonly [string, unknown])[] = [
      ['no message', undefined],
      ['message not an object', 'hello'],
      ['no role', { parts: [{ type: 'text', text: 'x' }] }],
      ['empty role', { role: '', parts: [{ type: 'text', text: 'x' }] }],
      ['no parts', { role: 'user' }],
      ['empty parts', { role: 'user', parts: [] }],
      ['part without type', { role: 'user', parts: [{ text: 'x' }] }],
      ['part with numeric type', { role: 'user', parts: [{ type: 1 }] }],
      ['part not an object', { role: 'user', parts: ['text'] }],
      ['negative token_count', { role: 'user', parts: [{ type: 'text', text: 'x' }], token_count: -1 }],
      ['fractional token_count', { role: 'user', parts: [{ type: 'text', text: 'x' }], token_count: 1.5 }],
      ['metadata a list', { role: 'user', parts: [{ type: 'text', text: 'x' }], metadata: [] }],
      ['empty id', { role: 'user', parts: [{ type: 'text', text: 'x' }], id: '' }],
    ];

    it.each(invalidMessages)('refuses %s: 400 invalid_message, nothing appended', async (_name, message) => {
      const id = uniqueId('append-invalid');
      await api.create(id);
      const body = message === undefined ? {} : { message };
      expectError(await api.call('POST', `/v1/contexts/${id}/messages`, body), 400, 'invalid_message');
      expect(await api.contextOk(id)).toMatchObject({ version: 0, last_seq: 0 });
    });

    it('refuses a negative or fractional if_version with 400 invalid_message', async () => {
      const id = uniqueId('append-bad-if-version');
      await api.create(id);
      for (const ifVersion of [-1, 0.5, '0']) {
        const response = await api.call('POST', `/v1/contexts/${id}/messages`, {
          message: textMessage('x'),
          if_version: ifVersion,
        });
        expectError(response, 400, 'invalid_message', /if_version/);
      }
      expect(await api.contextOk(id)).toMatchObject({ version: 0, last_seq: 0 });
    });
  });

  describe('token_estimate', () => {
    it("uses the client's token_count when given, even 0", async () => {
      const id = uniqueId('client-count');
      await api.create(id);
      const long = 'x'.repeat(400);
      expect((await api.appendOk(id, textMessage(long, { token_count: 42 }))).token_estimate).toBe(42);
      expect((await api.appendOk(id, textMessage(long, { token_count: 0 }))).token_estimate).toBe(0);
      const stored = await api.tailOk(id);
      expect(stored.map((message) => message.token_count)).toEqual([42, 0]);
    });

    it('counts chars4: max(1, ceil(chars/4)) per part, a non-text part on its compact JSON', async () => {
      const id = uniqueId('chars4');
      await api.create(id);
      const cases: readonly (readonly [
        string,
        readonly { type: string; [key: string]: unknown }[],
        number,
      ])[] = [
        ['4 chars', [{ type: 'text', text: 'abcd' }], 1],
        ['5 chars', [{ type: 'text', text: 'abcde' }], 2],
        ['empty text', [{ type: 'text', text: '' }], 1],
        ['code points, not UTF-16 units', [{ type: 'text', text: '😀😀😀😀😀' }], 2],
        [
          'two text parts',
          [
            { type: 'text', text: 'a'.repeat(9) },
            { type: 'text', text: 'b' },
          ],
          3 + 1,
        ],
        [
          'a tool part',
          [{ type: 'tool-search', toolCallId: 'c1', input: { q: 'fastpaca raft' } }],
          chars4('{"type":"tool-search","toolCallId":"c1","input":{"q":"fastpaca raft"}}'),
        ],
        ['the AI SDK parts', [...aiSdkParts], aiSdkParts.reduce((sum, part) => sum + partTokens(part), 0)],
      ];
      for (const [name, parts, expected] of cases) {
        const result = await api.appendOk(id, { role: 'assistant', parts });
        expect({ name, tokens: result.token_estimate }).toEqual({ name, tokens: expected });
      }
      const stored = await api.tailOk(id);
      expect(stored.map((message) => message.token_count)).toEqual(cases.map(([, , expected]) => expected));
    });
  });

  describe('idempotent appends', () => {
    it('a repeated Idempotency-Key replays the original: 200, Idempotent-Replayed: true, nothing appended', async () => {
      const id = uniqueId('idem-header');
      await api.create(id);
      await api.appendOk(id, textMessage('first'));
      const original = await api.append(id, textMessage('retried'), { idempotencyKey: 'turn-7' });
      expect(expectStatus<AppendBody>(original, 201)).toEqual({ seq: 2, version: 2, token_estimate: 2 });
      expect(original.headers.get('idempotent-replayed')).toBeNull();
      await api.appendOk(id, textMessage('later'));

      for (let retry = 0; retry < 2; retry++) {
        const replay = await api.append(id, textMessage('retried'), { idempotencyKey: 'turn-7' });
        expect(expectStatus<AppendBody>(replay, 200)).toEqual(original.body);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
      }
      expect(await api.contextOk(id)).toMatchObject({ version: 3, last_seq: 3 });
      expect((await api.tailOk(id)).map((message) => message.parts)).toEqual([
        [{ type: 'text', text: 'first' }],
        [{ type: 'text', text: 'retried' }],
        [{ type: 'text', text: 'later' }],
      ]);
    });

    it('a replay wins over a now-stale if_version (a retried success never turns into a 409)', async () => {
      const id = uniqueId('idem-if-version');
      await api.create(id);
      const original = await api.appendOk(id, textMessage('once'), { ifVersion: 0, idempotencyKey: 'k' });
      const replay = await api.append(id, textMessage('once'), { ifVersion: 0, idempotencyKey: 'k' });
      expect(expectStatus<AppendBody>(replay, 200)).toEqual(original);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(await api.contextOk(id)).toMatchObject({ version: 1, last_seq: 1 });
    });

    it('message.id works as the key; the stored id is the client id', async () => {
      const id = uniqueId('idem-id');
      await api.create(id);
      const message = textMessage('with an id', { id: 'msg-abc' });
      const original = await api.appendOk(id, message);
      expect(original).toEqual({ seq: 1, version: 1, token_estimate: 3 });
      const replay = await api.append(id, message);
      expect(expectStatus<AppendBody>(replay, 200)).toEqual(original);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      const stored = await api.tailOk(id);
      expect(stored).toHaveLength(1);
      expect(stored[0]?.id).toBe('msg-abc');
    });

    it('keys are scoped to their context', async () => {
      const a = uniqueId('idem-scope-a');
      const b = uniqueId('idem-scope-b');
      await api.create(a);
      await api.create(b);
      await api.appendOk(a, textMessage('x'), { idempotencyKey: 'shared' });
      const other = await api.append(b, textMessage('x'), { idempotencyKey: 'shared' });
      expect(expectStatus<AppendBody>(other, 201)).toEqual({ seq: 1, version: 1, token_estimate: 1 });
    });

    it('concurrent retries of one key append exactly once', async () => {
      const id = uniqueId('idem-concurrent');
      await api.create(id);
      const attempts = await Promise.all(
        Array.from({ length: 8 }, () => api.append(id, textMessage('racing'), { idempotencyKey: 'race' })),
      );
      const statuses = attempts.map((attempt) => attempt.status).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
      for (const attempt of attempts) expect(attempt.body).toEqual({ seq: 1, version: 1, token_estimate: 2 });
      expect(await api.contextOk(id)).toMatchObject({ version: 1, last_seq: 1 });
    });
  });

  describe('stored messages', () => {
    it('have the shape {id, seq, role, parts, metadata, token_count, inserted_at}; default id "<contextId>:<seq>"', async () => {
      const id = uniqueId('shape');
      await api.create(id);
      await api.appendOk(id, textMessage('plain'));
      await api.appendOk(id, {
        role: 'assistant',
        parts: [{ type: 'text', text: 'meta' }],
        metadata: { model: 'gpt-4o', usage: { input: 3 } },
        token_count: 9,
        id: 'client-id-1',
        unknown_field: 'dropped',
      });
      const stored = await api.tailOk(id);
      expect(stored).toEqual([
        {
          id: `${id}:1`,
          seq: 1,
          role: 'user',
          parts: [{ type: 'text', text: 'plain' }],
          metadata: {},
          token_count: 2,
          inserted_at: expect.stringMatching(ISO_UTC) as unknown,
        },
        {
          id: 'client-id-1',
          seq: 2,
          role: 'assistant',
          parts: [{ type: 'text', text: 'meta' }],
          metadata: { model: 'gpt-4o', usage: { input: 3 } },
          token_count: 9,
          inserted_at: expect.stringMatching(ISO_UTC) as unknown,
        },
      ]);
      const [first, second] = stored as [StoredMessage, StoredMessage];
      expect(second.inserted_at >= first.inserted_at).toBe(true);
      // The same shape everywhere the message is read.
      expect((await api.exportOk(id)).messages).toEqual(stored);
      expect((await api.windowOk(id)).messages).toEqual(stored);
    });

    it('keeps parts opaque: AI SDK UIMessage parts round-trip byte for byte', async () => {
      const id = uniqueId('opaque');
      await api.create(id);
      const message = { role: 'assistant', parts: aiSdkParts, metadata: { createdAt: 1_700_000_000_000 } };
      await api.appendOk(id, message);

      const fetchRaw = async (path: string): Promise<string> => (await fetch(`${node.base}${path}`)).text();
      const sent = JSON.stringify(aiSdkParts);
      for (const path of [
        `/v1/contexts/${id}/tail`,
        `/v1/contexts/${id}/messages`,
        `/v1/contexts/${id}/context`,
      ]) {
        const body = JSON.parse(await fetchRaw(path)) as { messages: StoredMessage[] };
        expect(JSON.stringify(body.messages[0]?.parts)).toBe(sent);
        expect(body.messages[0]?.metadata).toEqual({ createdAt: 1_700_000_000_000 });
      }
      // Byte for byte in the raw response too, not only after a parse.
      expect(await fetchRaw(`/v1/contexts/${id}/tail`)).toContain(sent);
    });

    it('keeps arbitrary roles', async () => {
      const id = uniqueId('roles');
      await api.create(id);
      for (const role of ['system', 'user', 'assistant', 'tool', 'developer-note']) {
        await api.appendOk(id, textMessage(role, { role }));
      }
      expect((await api.tailOk(id)).map((message) => message.role)).toEqual([
        'system',
        'user',
        'assistant',
        'tool',
        'developer-note',
      ]);
    });
  });
});
