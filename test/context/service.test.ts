// The contract's worked examples (API.md) through the real service: createContextService over the
// context state machine and the in-memory consensus host, with the chars4 estimator. Error paths
// assert the documented codes, statuses and messages (src/api/errors.ts).

import { beforeEach, describe, expect, it } from 'vitest';
import { createLocalConsensus } from '../../src/context/consensus.js';
import type { LocalConsensusOptions } from '../../src/context/consensus.js';
import { idempotencyKeysRemembered } from '../../src/context/apply-append.js';
import { createContextService } from '../../src/context/context-service.js';
import { InMemoryConsensusHost } from '../../src/context/in-memory-consensus.js';
import { ContextStateMachine } from '../../src/context/state-machine.js';
import type { AppendRequest, MessageInput } from '../../src/api/domain.js';
import { ServiceError } from '../../src/api/errors.js';
import type { ErrorCode } from '../../src/api/errors.js';
import type { ContextService } from '../../src/api/service.js';
import { createChars4Estimator } from '../../src/tokens/chars4.js';

interface Setup {
  readonly service: ContextService;
  readonly host: InMemoryConsensusHost;
  /** Proposals made so far (a write that changes nothing must make none). */
  readonly proposals: () => number;
  /** Moves the accepting node's clock forward one second. */
  readonly tick: () => void;
}

const setup = (consensusOptions: LocalConsensusOptions = {}): Setup => {
  const stateMachine = new ContextStateMachine();
  const host = new InMemoryConsensusHost({ stateMachine, groupCount: 8, deferPersist: true });
  const consensus = createLocalConsensus(host, consensusOptions);
  let proposals = 0;
  let clock = Date.UTC(2025, 5, 1, 12, 0, 0);
  const service = createContextService({
    consensus: {
      ...consensus,
      propose: (group, command) => {
        proposals++;
        return consensus.propose(group, command);
      },
    },
    stateMachine,
    estimator: createChars4Estimator(),
    clock: () => new Date(clock),
    groupCount: 8,
  });
  return {
    service,
    host,
    proposals: () => proposals,
    tick: () => {
      clock += 1_000;
    },
  };
};

const text = (value: string, tokens?: number): MessageInput => ({
  role: 'user',
  parts: [{ type: 'text', text: value }],
  ...(tokens === undefined ? {} : { token_count: tokens }),
});

/** The ServiceError `promise` rejects with, checked against the documented code and status. */
const rejection = async (
  promise: Promise<unknown>,
  code: ErrorCode,
  status: number,
): Promise<ServiceError> => {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ServiceError);
  const serviceError = error as ServiceError;
  expect({ code: serviceError.code, status: serviceError.httpStatus }).toEqual({ code, status });
  return serviceError;
};

describe('context service: contexts, versions and seqs', () => {
  let s: Setup;
  beforeEach(() => {
    s = setup();
  });

  it('creates with defaults, then seq +1 and version +1 per append, nothing else moving version', async () => {
    const created = await s.service.putContext('chat-1', { token_budget: 1000 });
    expect(created).toEqual({
      created: true,
      context: {
        id: 'chat-1',
        status: 'active',
        token_budget: 1000,
        trigger_ratio: 0.7,
        policy: { strategy: 'last_n', config: { limit: 200 } },
        metadata: {},
        version: 0,
        last_seq: 0,
        archived_seq: 0,
        created_at: '2025-06-01T12:00:00.000Z',
        inserted_at: '2025-06-01T12:00:00.000Z',
        updated_at: '2025-06-01T12:00:00.000Z',
      },
    });
    for (const seq of [1, 2, 3]) {
      expect(await s.service.append('chat-1', { message: text('hello world!') })).toEqual({
        seq,
        version: seq,
        token_estimate: 3, // chars4: ceil(12 / 4)
        replayed: false,
      });
    }
    s.tick();
    const updated = await s.service.putContext('chat-1', { metadata: { user: 'u1' } });
    expect(updated.created).toBe(false);
    expect(updated.context).toMatchObject({ version: 3, last_seq: 3, metadata: { user: 'u1' } });
    expect(updated.context.updated_at).toBe('2025-06-01T12:00:01.000Z');
    s.tick();
    const patched = await s.service.patchMetadata('chat-1', { user: null, topic: 'x' });
    expect(patched).toMatchObject({ version: 3, metadata: { topic: 'x' } });
    expect(patched.updated_at).toBe('2025-06-01T12:00:02.000Z');
    expect(await s.service.getContext('chat-1')).toEqual(patched);
  });

  it('answers an unchanged PUT from a read: 200, nothing proposed, updated_at kept', async () => {
    await s.service.putContext('chat-1', { token_budget: 500, metadata: { a: 1, b: 2 } });
    const before = s.proposals();
    s.tick();
    // Same values, keys in another order, and a subset of the fields: all "no change".
    const again = await s.service.putContext('chat-1', { metadata: { b: 2, a: 1 }, token_budget: 500 });
    expect(again.created).toBe(false);
    expect(again.context.updated_at).toBe('2025-06-01T12:00:00.000Z');
    expect(s.proposals()).toBe(before);
  });

  it('rejects stale if_version with 409 naming expected and found versions', async () => {
    await s.service.putContext('chat-1', { token_budget: 1000 });
    await s.service.append('chat-1', { message: text('a') });
    await s.service.append('chat-1', { message: text('b'), if_version: 1 });
    const error = await rejection(
      s.service.append('chat-1', { message: text('c'), if_version: 1 }),
      'conflict',
      409,
    );
    expect(error.message).toBe('Context version changed (expected 1, found 2)');
    const compact = await rejection(
      s.service.compact('chat-1', { replacement: [text('summary')], if_version: 5 }),
      'conflict',
      409,
    );
    expect(compact.message).toBe('Context version changed (expected 5, found 2)');
    const read = await rejection(s.service.llmContext('chat-1', { ifVersion: 0 }), 'conflict', 409);
    expect(read.message).toBe('Context version changed (expected 0, found 2)');
    expect((await s.service.getContext('chat-1')).last_seq).toBe(2);
  });
});

describe('context service: tail and export paging', () => {
  let s: Setup;
  beforeEach(async () => {
    s = setup();
    await s.service.putContext('chat-1', { token_budget: 100_000 });
    for (let i = 1; i <= 10; i++) await s.service.append('chat-1', { message: text(`m${i}`) });
  });

  it('tail skips `offset` newest and returns the next `limit` oldest-first; [] past the start and for unknown ids', async () => {
    const seqs = async (limit: number, offset: number) =>
      (await s.service.tail('chat-1', limit, offset)).map((message) => message.seq);
    expect(await seqs(3, 0)).toEqual([8, 9, 10]);
    expect(await seqs(3, 3)).toEqual([5, 6, 7]);
    expect(await seqs(3, 9)).toEqual([1]);
    expect(await seqs(3, 10)).toEqual([]);
    expect(await seqs(1000, 0)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await s.service.tail('nobody', 10, 0)).toEqual([]);
    const [first] = await s.service.tail('chat-1', 1, 9);
    expect(first).toEqual({
      id: 'chat-1:1',
      seq: 1,
      role: 'user',
      parts: [{ type: 'text', text: 'm1' }],
      metadata: {},
      token_count: 1,
      inserted_at: '2025-06-01T12:00:00.000Z',
    });
  });

  it('rejects bad paging integers with 400 invalid_query', async () => {
    await rejection(s.service.tail('chat-1', 0, 0), 'invalid_query', 400);
    await rejection(s.service.tail('chat-1', 1001, 0), 'invalid_query', 400);
    await rejection(s.service.tail('chat-1', 10, -1), 'invalid_query', 400);
    await rejection(s.service.tail('chat-1', 1.5, 0), 'invalid_query', 400);
    await rejection(s.service.messages('chat-1', -1, 10), 'invalid_query', 400);
    await rejection(s.service.messages('chat-1', 0, 0), 'invalid_query', 400);
    await rejection(s.service.llmContext('chat-1', { budgetTokens: 0 }), 'invalid_query', 400);
  });

  it('exports ascending from from_seq with next_from_seq while more remain; 404 for unknown ids', async () => {
    const page1 = await s.service.messages('chat-1', 0, 4);
    expect(page1.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(page1.next_from_seq).toBe(4);
    const page3 = await s.service.messages('chat-1', 8, 4);
    expect(page3.messages.map((m) => m.seq)).toEqual([9, 10]);
    expect(page3).not.toHaveProperty('next_from_seq');
    const page2 = await s.service.messages('chat-1', 4, 4);
    expect(page2.messages.map((m) => m.seq)).toEqual([5, 6, 7, 8]);
    expect(page2.next_from_seq).toBe(8);
    // A page that ends exactly at the last message has no next_from_seq: nothing more remains.
    expect(await s.service.messages('chat-1', 6, 4)).not.toHaveProperty('next_from_seq');
    expect(await s.service.messages('chat-1', 10, 4)).toEqual({ messages: [] });
    await rejection(s.service.messages('nobody', 0, 10), 'context_not_found', 404);
  });
});

describe('context service: LLM window and policies', () => {
  let s: Setup;
  beforeEach(() => {
    s = setup();
  });

  const appendTokens = async (id: string, ...counts: number[]) => {
    const results = [];
    for (const count of counts)
      results.push(await s.service.append(id, { message: text(`t${count}`, count) }));
    return results;
  };

  it('last_n fires only once used_tokens crosses budget × trigger_ratio, and trims to within it', async () => {
    await s.service.putContext('c', { token_budget: 100, trigger_ratio: 0.5 });
    // Exactly at the threshold (50): no run.
    const [, atThreshold] = await appendTokens('c', 25, 25);
    expect(atThreshold).toMatchObject({ seq: 2, version: 2 });
    let window = await s.service.llmContext('c', {});
    expect(window).toMatchObject({ version: 2, used_tokens: 50, token_count: 50, needs_compaction: false });
    // 51 > 50: the policy runs and keeps the newest within 50; still one version for the append
    // (the contract: version == last_seq with no manual compaction).
    const [crossed] = await appendTokens('c', 1);
    expect(crossed).toEqual({ seq: 3, version: 3, token_estimate: 1, replayed: false });
    window = await s.service.llmContext('c', {});
    expect(window.messages.map((m) => m.seq)).toEqual([2, 3]);
    expect(window).toMatchObject({
      version: 3,
      used_tokens: 26,
      needs_compaction: false,
      segments: [{ type: 'live', from_seq: 2, to_seq: 3 }],
      metadata: { policy: 'last_n', version: 3, removed_messages: 1, tokens_before: 51, tokens_after: 26 },
    });
    // The log keeps everything.
    expect((await s.service.messages('c', 0, 100)).messages.map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it('one version per append, also when the policy rewrites the window: version == last_seq', async () => {
    await s.service.putContext('c', { token_budget: 100, trigger_ratio: 0.1 });
    // Every append from the second on crosses the threshold (10 tokens) and runs the policy.
    const results = await appendTokens('c', 10, 10, 10, 10, 10);
    expect(results.map((r) => [r.seq, r.version])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    const view = await s.service.getContext('c');
    expect(view).toMatchObject({ version: 5, last_seq: 5 });
    expect((await s.service.llmContext('c', {})).metadata).toMatchObject({ policy: 'last_n', version: 5 });
  });

  it('judges the threshold exactly: 180 × 0.35 = 63 tokens fit, 64 run the policy', async () => {
    // In floating point 180 × 0.35 is 62.99999999999999; the threshold must still be 63.
    await s.service.putContext('c', { token_budget: 180, trigger_ratio: 0.35 });
    await appendTokens('c', 60, 3);
    expect(await s.service.llmContext('c', {})).toMatchObject({
      version: 2,
      used_tokens: 63,
      needs_compaction: false,
    });
    expect((await s.service.llmContext('c', { budgetTokens: 180 })).needs_compaction).toBe(false);
    const [crossed] = await appendTokens('c', 1);
    expect(crossed).toMatchObject({ seq: 3, version: 3 });
    expect(await s.service.llmContext('c', {})).toMatchObject({ used_tokens: 4, needs_compaction: false });
  });

  it('last_n keeps at most config.limit messages once it runs; a single oversized newest message stays', async () => {
    await s.service.putContext('c', {
      token_budget: 100,
      trigger_ratio: 0.5,
      policy: { strategy: 'last_n', config: { limit: 2 } },
    });
    await appendTokens('c', 5, 5, 5, 5, 40);
    let window = await s.service.llmContext('c', {});
    expect(window.messages.map((m) => m.seq)).toEqual([4, 5]);
    await appendTokens('c', 70);
    window = await s.service.llmContext('c', {});
    expect(window.messages.map((m) => m.seq)).toEqual([6]);
    expect(window).toMatchObject({ used_tokens: 70, needs_compaction: true });
  });

  it('manual never trims and lets needs_compaction rise; compaction then replaces the window', async () => {
    await s.service.putContext('c', { token_budget: 100, policy: { strategy: 'manual', config: {} } });
    const results = await appendTokens('c', 30, 30, 30);
    expect(results.map((r) => r.version)).toEqual([1, 2, 3]);
    let window = await s.service.llmContext('c', {});
    expect(window).toMatchObject({ used_tokens: 90, needs_compaction: true });
    expect(window.messages).toHaveLength(3);

    s.tick();
    const summary: MessageInput = {
      role: 'system',
      parts: [{ type: 'text', text: 'summary of 1-3' }],
      id: 'sum-1',
    };
    expect(await s.service.compact('c', { replacement: [summary], if_version: 3 })).toEqual({ version: 4 });
    window = await s.service.llmContext('c', {});
    expect(window).toMatchObject({
      version: 4,
      used_tokens: 4, // chars4: ceil(14 / 4)
      needs_compaction: false,
      segments: [{ type: 'summary', from_seq: 1, to_seq: 3, count: 1 }],
    });
    expect(window.messages).toEqual([
      {
        id: 'sum-1',
        seq: 0,
        role: 'system',
        parts: summary.parts,
        metadata: {},
        token_count: 4,
        inserted_at: '2025-06-01T12:00:01.000Z',
      },
    ]);
    await appendTokens('c', 10);
    window = await s.service.llmContext('c', {});
    expect(window.messages.map((m) => m.id)).toEqual(['sum-1', 'c:4']);
    expect(window.segments).toEqual([
      { type: 'summary', from_seq: 1, to_seq: 3, count: 1 },
      { type: 'live', from_seq: 4, to_seq: 4 },
    ]);
    expect(window.used_tokens).toBe(14);
    expect((await s.service.getContext('c')).last_seq).toBe(4);
  });

  it('skip_parts removes parts of the skipped kinds first, drops emptied messages, then applies last_n', async () => {
    await s.service.putContext('c', {
      token_budget: 100,
      trigger_ratio: 0.5,
      policy: { strategy: 'skip_parts', config: {} },
    });
    const toolCall = { type: 'tool-call', name: 'search', args: 'x'.repeat(120) };
    await s.service.append('c', {
      message: { role: 'assistant', parts: [{ type: 'text', text: 'abcd' }, toolCall] },
    });
    await s.service.append('c', {
      message: { role: 'assistant', parts: [{ type: 'reasoning', text: 'r'.repeat(40) }] },
    });
    const window = await s.service.llmContext('c', {});
    // The tool call and the reasoning-only message are gone from the window, not from the log.
    expect(window.messages).toHaveLength(1);
    expect(window.messages[0]).toMatchObject({
      seq: 1,
      parts: [{ type: 'text', text: 'abcd' }],
      token_count: 1,
    });
    expect(window.used_tokens).toBe(1);
    const log = await s.service.messages('c', 0, 10);
    expect(log.messages[0]?.parts).toHaveLength(2);
    expect(log.messages[1]?.parts).toEqual([{ type: 'reasoning', text: 'r'.repeat(40) }]);
  });

  it('budget_tokens returns the newest suffix that fits and judges the flag against it', async () => {
    await s.service.putContext('c', { token_budget: 1000, policy: { strategy: 'manual', config: {} } });
    await appendTokens('c', 10, 20, 30);
    const cut = await s.service.llmContext('c', { budgetTokens: 55 });
    expect(cut.messages.map((m) => m.seq)).toEqual([2, 3]);
    expect(cut).toMatchObject({ used_tokens: 50, token_count: 50, needs_compaction: true });
    const roomy = await s.service.llmContext('c', { budgetTokens: 100 });
    expect(roomy).toMatchObject({ used_tokens: 60, needs_compaction: false });
  });

  it("counts tokens on the server unless the client's token_count is given, which always wins", async () => {
    await s.service.putContext('c', { token_budget: 1000 });
    const counted = await s.service.append('c', {
      message: {
        role: 'user',
        parts: [
          { type: 'text', text: 'x'.repeat(17) },
          { type: 'image', url: 'u' },
        ],
      },
    });
    // chars4 per part: ceil(17 / 4) = 5, and the image part on its compact JSON (26 chars) = 7.
    expect(counted.token_estimate).toBe(12);
    const given = await s.service.append('c', { message: text('x'.repeat(400), 2) });
    expect(given.token_estimate).toBe(2);
    const zero = await s.service.append('c', { message: text('hello', 0) });
    expect(zero.token_estimate).toBe(0);
    const window = await s.service.llmContext('c', {});
    expect(window.messages.map((m) => m.token_count)).toEqual([12, 2, 0]);
    expect(window.used_tokens).toBe(14);
  });
});

describe('context service: idempotent appends', () => {
  let s: Setup;
  beforeEach(async () => {
    s = setup();
    await s.service.putContext('c', { token_budget: 100_000 });
  });

  it('replays a repeated key with the original result and appends nothing, even with a stale if_version', async () => {
    const request: AppendRequest = { message: text('hi'), idempotency_key: 'req-1' };
    const first = await s.service.append('c', request);
    expect(first).toEqual({ seq: 1, version: 1, token_estimate: 1, replayed: false });
    await s.service.append('c', { message: text('other') });
    expect(await s.service.append('c', request)).toEqual({ ...first, replayed: true });
    expect(await s.service.append('c', { ...request, if_version: 0 })).toEqual({ ...first, replayed: true });
    expect((await s.service.getContext('c')).last_seq).toBe(2);
  });

  it('accepts idempotency keys of 1 to 256 bytes of UTF-8 and refuses longer or empty ones', async () => {
    const twoByte = '\u00e9'.repeat(128);
    await s.service.append('c', { message: text('a'), idempotency_key: twoByte });
    await rejection(
      s.service.append('c', { message: text('b'), idempotency_key: `${twoByte}k` }),
      'invalid_message',
      400,
    );
    await rejection(
      s.service.append('c', { message: text('b'), idempotency_key: '' }),
      'invalid_message',
      400,
    );
  });

  it('uses message.id as the key when no Idempotency-Key is given', async () => {
    const message = { ...text('hi'), id: 'msg-1' };
    expect(await s.service.append('c', { message })).toMatchObject({ seq: 1, replayed: false });
    expect(await s.service.append('c', { message })).toMatchObject({ seq: 1, replayed: true });
    expect((await s.service.tail('c', 10, 0)).map((m) => m.id)).toEqual(['msg-1']);
  });

  it('rejects a key reused for a different message with 409 conflict, appending nothing', async () => {
    await s.service.append('c', { message: text('hi'), idempotency_key: 'req-1' });
    const error = await rejection(
      s.service.append('c', { message: text('something else'), idempotency_key: 'req-1' }),
      'conflict',
      409,
    );
    expect(error.message).toBe('Idempotency key "req-1" was already used for a different message (seq 1)');
    // The token count is not part of the comparison: a retry counted differently is still a retry.
    expect(await s.service.append('c', { message: text('hi', 99), idempotency_key: 'req-1' })).toMatchObject({
      seq: 1,
      replayed: true,
    });
    expect((await s.service.getContext('c')).last_seq).toBe(1);
  });

  it(`remembers keys for the newest ${idempotencyKeysRemembered} appends, then forgets the oldest`, async () => {
    await s.service.append('c', { message: text('first', 1), idempotency_key: 'old' });
    for (let i = 2; i <= idempotencyKeysRemembered; i++) {
      await s.service.append('c', { message: text('x', 1), idempotency_key: `k${i}` });
      if (i % 2_000 === 0) s.host.flush();
    }
    expect(await s.service.append('c', { message: text('first', 1), idempotency_key: 'old' })).toMatchObject({
      seq: 1,
      replayed: true,
    });
    await s.service.append('c', { message: text('x', 1) }); // seq 10,001: 'old' leaves the newest 10,000
    expect(await s.service.append('c', { message: text('first', 1), idempotency_key: 'old' })).toMatchObject({
      seq: idempotencyKeysRemembered + 2,
      replayed: false,
    });
    // That append (seq 10,002) pushed seq 2 out too; the key of seq 3 is still remembered.
    expect(await s.service.append('c', { message: text('x', 1), idempotency_key: 'k3' })).toMatchObject({
      seq: 3,
      replayed: true,
    });
    expect(await s.service.append('c', { message: text('x', 1), idempotency_key: 'k2' })).toMatchObject({
      seq: idempotencyKeysRemembered + 3,
      replayed: false,
    });
  });
});

describe('context service: tombstones and errors', () => {
  let s: Setup;
  beforeEach(async () => {
    s = setup();
    await s.service.putContext('c', { token_budget: 1000 });
    await s.service.append('c', { message: text('before') });
  });

  it('DELETE tombstones: writes get 409 context_tombstoned, reads keep working, DELETE again is fine', async () => {
    await s.service.deleteContext('c');
    expect(await s.service.getContext('c')).toMatchObject({ status: 'tombstoned', version: 1, last_seq: 1 });
    await rejection(s.service.append('c', { message: text('after') }), 'context_tombstoned', 409);
    await rejection(s.service.putContext('c', { token_budget: 5 }), 'context_tombstoned', 409);
    await rejection(s.service.putContext('c', {}), 'context_tombstoned', 409);
    await rejection(s.service.patchMetadata('c', { a: 1 }), 'context_tombstoned', 409);
    await rejection(s.service.compact('c', { replacement: [] }), 'context_tombstoned', 409);
    expect((await s.service.tail('c', 10, 0)).map((m) => m.seq)).toEqual([1]);
    expect((await s.service.messages('c', 0, 10)).messages).toHaveLength(1);
    expect((await s.service.llmContext('c', {})).messages).toHaveLength(1);
    await s.service.deleteContext('c');
    expect(await s.service.getContext('c')).toMatchObject({ status: 'tombstoned', version: 1 });
  });

  it('answers missing contexts with 404 context_not_found (no auto-create)', async () => {
    await rejection(s.service.getContext('nope'), 'context_not_found', 404);
    await rejection(s.service.append('nope', { message: text('x') }), 'context_not_found', 404);
    await rejection(s.service.deleteContext('nope'), 'context_not_found', 404);
    await rejection(s.service.patchMetadata('nope', {}), 'context_not_found', 404);
    await rejection(s.service.compact('nope', { replacement: [] }), 'context_not_found', 404);
    await rejection(s.service.llmContext('nope', {}), 'context_not_found', 404);
    await rejection(s.service.getContext('nope'), 'context_not_found', 404);
  });

  it('validates ids, configs, messages and replacements with the documented 400 codes', async () => {
    await rejection(s.service.getContext(''), 'invalid_context_id', 400);
    await rejection(s.service.getContext('a/b'), 'invalid_context_id', 400);
    await rejection(s.service.getContext('x'.repeat(257)), 'invalid_context_id', 400);
    await rejection(s.service.append('a\u0001b', { message: text('x') }), 'invalid_context_id', 400);
    await rejection(s.service.putContext('new', {}), 'invalid_context_config', 400);
    await rejection(s.service.putContext('new', { token_budget: 0 }), 'invalid_context_config', 400);
    await rejection(
      s.service.putContext('new', { token_budget: 10, trigger_ratio: 0 }),
      'invalid_context_config',
      400,
    );
    await rejection(
      s.service.putContext('new', { token_budget: 10, trigger_ratio: 1.5 }),
      'invalid_context_config',
      400,
    );
    await rejection(
      s.service.putContext('new', { token_budget: 10, policy: { strategy: 'lru' as 'manual', config: {} } }),
      'invalid_context_config',
      400,
    );
    await rejection(
      s.service.putContext('new', { token_budget: 10, policy: { strategy: 'last_n', config: { limit: 0 } } }),
      'invalid_context_config',
      400,
    );
    await rejection(s.service.append('c', { message: { role: 'user', parts: [] } }), 'invalid_message', 400);
    await rejection(s.service.append('c', { message: text('x', -1) }), 'invalid_message', 400);
    await rejection(
      s.service.append('c', { message: text('x'), idempotency_key: '' }),
      'invalid_message',
      400,
    );
    await rejection(
      s.service.compact('c', { replacement: [{ role: '', parts: [{ type: 'text' }] }] }),
      'invalid_replacement',
      400,
    );
    await rejection(
      s.service.compact('c', { replacement: 'nope' as unknown as MessageInput[] }),
      'invalid_replacement',
      400,
    );
    await rejection(
      s.service.patchMetadata('c', [] as unknown as Record<string, never>),
      'invalid_metadata',
      400,
    );
    // Nothing above changed the context.
    expect(await s.service.getContext('c')).toMatchObject({ version: 1, last_seq: 1, metadata: {} });
    await rejection(s.service.getContext('new'), 'context_not_found', 404);
  });

  it('maps Raft failures to retryable 503s', async () => {
    const cases = [
      ['TIMEOUT', 'raft_timeout'],
      ['OVERLOADED', 'overloaded'],
      ['NOT_LEADER', 'raft_unavailable'],
      ['SHUTTING_DOWN', 'raft_unavailable'],
    ] as const;
    for (const [failure, code] of cases) {
      s.host.failNext('propose', failure);
      const error = await rejection(s.service.append('c', { message: text('x') }), code, 503);
      expect(error.retryAfterSeconds).toBeGreaterThan(0);
      s.host.failNext('read', failure);
      await rejection(s.service.getContext('c'), code, 503);
    }
    expect((await s.service.getContext('c')).last_seq).toBe(1);
  });

  it('refuses a command too large to replicate with 413 payload_too_large, proposing nothing', async () => {
    // Every write's entry must fit one frame to the other replicas (consensus.ts, entryBytesMax).
    s = setup({ entryBytesMax: 4_096 });
    await s.service.putContext('c', { token_budget: 100_000 });
    await s.service.append('c', { message: text('small') });
    s.host.flush();
    const stored = s.host.dump();
    const error = await rejection(
      s.service.append('c', { message: text('x'.repeat(5_000)) }),
      'payload_too_large',
      413,
    );
    expect(error.message).toMatch(/largest that can be replicated is 4096 bytes/);
    await rejection(s.service.patchMetadata('c', { blob: 'y'.repeat(5_000) }), 'payload_too_large', 413);
    s.host.flush();
    expect(s.host.dump()).toEqual(stored);
    expect(await s.service.getContext('c')).toMatchObject({ version: 1, last_seq: 1, metadata: {} });
  });
});
