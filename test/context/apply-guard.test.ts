// The state machine's last-resort guard (apply-guard.ts) and the edges of command decoding, by
// example: an entry whose apply throws is refused with no writes and reported once, while the
// failures of this node alone (store reads, damaged records) still fail the apply; the deepest
// values the gateway lets through still apply.

import { describe, expect, it } from 'vitest';
import type { AppliedEntry, GroupKv, GroupWriteBatch, KeyRange } from '../../raft/api.js';
import type { RefusedEntry } from '../../src/context/apply-guard.js';
import { encodeCommand } from '../../src/context/commands.js';
import type { Command, MessageDraft } from '../../src/context/commands.js';
import { StoreReadError } from '../../src/context/group-access.js';
import { ContextKeys } from '../../src/context/keys.js';
import { MemoryKv } from '../../src/context/memory-kv.js';
import { decodeWindowRecord, encodeWindowRecord, StoredRecordError } from '../../src/context/records.js';
import { ContextStateMachine } from '../../src/context/state-machine.js';
import { defaultPolicy, defaultTriggerRatio } from '../../src/context/policy-config.js';
import type { JsonValue } from '../../src/api/domain.js';
import { encodePoison } from './poison-arbitraries.js';
import { stamp, World } from './world.js';

const defaults = { triggerRatio: defaultTriggerRatio, policy: defaultPolicy };

const create = (contextId: string): Command => ({
  type: 'put_context',
  contextId,
  now: stamp(1),
  changes: { token_budget: 1_000, policy: { strategy: 'manual', config: {} } },
  defaults,
});

const draft = (part: JsonValue, metadata?: JsonValue): MessageDraft => ({
  role: 'user',
  parts: [{ type: 'text', payload: part }],
  ...(metadata === undefined ? {} : { metadata: { deep: metadata } }),
  tokenCount: 3,
  partTokens: [3],
});

const append = (contextId: string, message: MessageDraft = draft('hi')): Command => ({
  type: 'append',
  contextId,
  now: stamp(2),
  message,
});

/** `[[...[leaf]...]]`, `depth` arrays deep. */
const nested = (depth: number): JsonValue => {
  let value: JsonValue = 'leaf';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

const noWrites: GroupWriteBatch = {
  put: () => {
    throw new Error('unexpected write');
  },
  del: () => {
    throw new Error('unexpected delete');
  },
};

const entry = (data: Uint8Array, index = 1): AppliedEntry => ({ index, term: 1, data });

describe('apply guard', () => {
  it('refuses an append whose seq would leave the safe integers: no writes, reported once, the context still works', async () => {
    const refusals: RefusedEntry[] = [];
    const world = new World();
    const sm = new ContextStateMachine({ onRefusedEntry: (refusal) => refusals.push(refusal) });
    await world.run(create('ctx-a'));
    // A state no command sequence reaches in practice: 2^53 - 1 appends already.
    const pairs = await world.groupPairs(world.group('ctx-a'));
    const windowKey = Buffer.from(new ContextKeys('ctx-a').window()).toString('hex');
    const kv = new MemoryKv();
    for (const [key, value] of pairs) {
      if (Buffer.from(key).toString('hex') !== windowKey) kv.put(key, value);
      else
        kv.put(key, encodeWindowRecord({ ...decodeWindowRecord(value), lastSeq: Number.MAX_SAFE_INTEGER }));
    }
    const before = kv.dump();

    const [result] = await sm.apply(0, [entry(encodeCommand(append('ctx-a')), 7)], noWrites, kv);
    expect(result).toEqual({
      error: 'internal',
      message: 'The command could not be applied; no replica applied it',
    });
    expect(kv.dump()).toEqual(before);
    expect(sm.dirtyKeys()).toBe(0);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ group: 0, index: 7, reason: 'failed' });
    expect(refusals[0]?.error).toBeInstanceOf(RangeError);

    // Commands that do not need a new seq still apply.
    const writes: string[] = [];
    const batch: GroupWriteBatch = {
      put: (key) => writes.push(Buffer.from(key).toString('hex')),
      del: () => {},
    };
    const patch: Command = { type: 'patch_metadata', contextId: 'ctx-a', now: stamp(3), metadata: { a: 1 } };
    const [patched] = await sm.apply(0, [entry(encodeCommand(patch), 8)], batch, kv);
    expect(patched).toMatchObject({ type: 'patch_metadata', context: { metadata: { a: 1 } } });
    expect(writes.length).toBeGreaterThan(0);
  });

  it('refuses a malformed entry without touching the store, and reports it', async () => {
    const refusals: RefusedEntry[] = [];
    const sm = new ContextStateMachine({ onRefusedEntry: (refusal) => refusals.push(refusal) });
    const kv = new MemoryKv();
    const longId = { ...create('ctx-a'), contextId: 'x'.repeat(70_000) };
    const bigint = encodePoison([3, 'ctx-a', stamp(1), { big: 2n ** 64n - 1n }]);
    const deep = encodePoison([3, 'ctx-a', stamp(1), { deep: '@@deep:m:3000@@' }]);
    const results = await sm.apply(
      0,
      [entry(encodeCommand(longId), 1), entry(bigint, 2), entry(deep, 3), entry(Uint8Array.of(1, 0xc1), 4)],
      noWrites,
      kv,
    );
    expect(results.map((result) => 'error' in result && result.error)).toEqual([
      'internal',
      'internal',
      'internal',
      'internal',
    ]);
    const messages = results.map((result) => ('message' in result ? result.message : ''));
    expect(messages[0]).toContain('context id');
    expect(messages[1]).toContain('0xcf is not JSON');
    expect(messages[2]).toContain('nested deeper than 128');
    expect(refusals.map(({ index, reason }) => [index, reason])).toEqual([
      [1, 'malformed'],
      [2, 'malformed'],
      [3, 'malformed'],
      [4, 'malformed'],
    ]);
  });

  it('a logger that throws changes nothing', async () => {
    const sm = new ContextStateMachine({
      onRefusedEntry: () => {
        throw new Error('log sink down');
      },
    });
    const [result] = await sm.apply(0, [entry(Uint8Array.of(9))], noWrites, new MemoryKv());
    expect(result).toMatchObject({ error: 'internal' });
  });

  it('a failed store read fails the apply: it is this node, not the entry', async () => {
    const failing: GroupKv = {
      get: () => Promise.reject(new Error('EIO')),
      iterate: (range: KeyRange) => new MemoryKv().iterate(range),
    };
    const sm = new ContextStateMachine();
    await expect(
      sm.apply(0, [entry(encodeCommand(create('ctx-a')))], noWrites, failing),
    ).rejects.toBeInstanceOf(StoreReadError);
  });

  it('a stored record that does not decode fails the apply: this node’s store is damaged', async () => {
    const keys = new ContextKeys('ctx-a');
    const kv = new MemoryKv();
    kv.put(keys.context(), Uint8Array.of(0x01, 0xc1));
    kv.put(keys.window(), Uint8Array.of(0x01, 0xc1));
    const sm = new ContextStateMachine();
    await expect(sm.apply(0, [entry(encodeCommand(append('ctx-a')))], noWrites, kv)).rejects.toBeInstanceOf(
      StoredRecordError,
    );
  });
});

describe('command decoding accepts what the gateway lets through', () => {
  it('applies parts and metadata nested as deep as the gateway allows (64), in appends and compactions', async () => {
    const world = new World();
    await world.run(create('ctx-a'));
    const deep = draft(nested(62), nested(62));
    expect(await world.run(append('ctx-a', deep))).toMatchObject({ type: 'append', seq: 1 });
    const compact: Command = {
      type: 'compact',
      contextId: 'ctx-a',
      now: stamp(3),
      replacement: [deep, deep],
    };
    expect(await world.run(compact)).toMatchObject({ type: 'compact', version: 2 });
    const window = await world.window('ctx-a');
    expect(window?.messages.map((message) => message.parts)).toEqual([deep.parts, deep.parts]);
  });

  it('applies context ids of 256 bytes and values with lone surrogates, __proto__ keys and large numbers', async () => {
    const world = new World();
    const id = 'é'.repeat(128);
    await world.run(create(id));
    const metadata = JSON.parse('{"__proto__": {"polluted": true}, "n": 1e300, "s": "\\ud800"}') as JsonValue;
    const result = await world.run({
      type: 'patch_metadata',
      contextId: id,
      now: stamp(2),
      metadata: metadata as { [key: string]: JsonValue },
    });
    expect(result).toMatchObject({ type: 'patch_metadata' });
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
});
