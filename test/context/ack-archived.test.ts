// Examples of the archiver's `ack_archived` command beyond what the property test reaches: its wire
// form passes the strict decoder (and malformed ones are refused alike on every replica), and an
// idempotency key of a trimmed append is still forgotten exactly when the key leaves the newest
// 10,000 appends (its seq -> key record goes with it).

import { describe, expect, it } from 'vitest';
import { idempotencyKeysRemembered } from '../../src/context/apply-append.js';
import {
  commandFormatV1,
  CommandDecodeError,
  decodeCommand,
  encodeCommand,
} from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';
import { encodeTagged } from '../../src/context/codec.js';
import { ContextKeys } from '../../src/context/keys.js';
import { stamp, World } from './world.js';

describe('ack_archived on the wire', () => {
  it('round-trips through the strict decoder', () => {
    const command: Command = {
      type: 'ack_archived',
      contextId: 'c',
      now: stamp(1),
      upToSeq: 42,
      tailKeep: 3,
    };
    expect(decodeCommand(encodeCommand(command))).toEqual(command);
  });

  it.each([
    ['a missing field', [6, 'c', stamp(1), 4]],
    ['an extra field', [6, 'c', stamp(1), 4, 1, 0]],
    ['a negative seq', [6, 'c', stamp(1), -1, 1]],
    ['a fractional tail', [6, 'c', stamp(1), 4, 1.5]],
    ['a string seq', [6, 'c', stamp(1), '4', 1]],
    ['a bad context id', [6, 'a/b', stamp(1), 4, 1]],
  ])('refuses %s', (_what, wire) => {
    expect(() => decodeCommand(encodeTagged(commandFormatV1, wire))).toThrow(CommandDecodeError);
  });
});

describe('idempotency keys of trimmed appends', () => {
  it('are remembered for the newest 10,000 appends and forgotten after, trimmed or not', async () => {
    const world = new World();
    const id = 'keyed';
    let step = 0;
    const run = (command: Omit<Command, 'now'>) => world.run({ ...command, now: stamp(++step) } as Command);
    const message = (text: string) => ({
      role: 'user',
      parts: [{ type: 'text', text }],
      tokenCount: 1,
      partTokens: [1],
    });
    await run({
      type: 'put_context',
      contextId: id,
      changes: { token_budget: 5, policy: { strategy: 'last_n', config: { limit: 2 } } },
      defaults: { triggerRatio: 0.7, policy: { strategy: 'last_n', config: { limit: 2 } } },
    } as Omit<Command, 'now'>);
    const keyed = 20;
    const total = idempotencyKeysRemembered + 5;
    for (let seq = 1; seq <= total; seq++) {
      await run({
        type: 'append',
        contextId: id,
        message: message(`m${seq}`),
        ...(seq <= keyed ? { idempotencyKey: `k${seq}` } : {}),
      } as Omit<Command, 'now'>);
      // The archiver acks every 50 appends and keeps a tail of 2.
      if (seq % 50 === 0 || seq === keyed) {
        await run({ type: 'ack_archived', contextId: id, upToSeq: seq, tailKeep: 2 } as Omit<Command, 'now'>);
      }
    }
    const view = await world.getContext(id);
    expect(view).toMatchObject({ last_seq: total, archived_seq: total - 5 });
    const keys = new ContextKeys(id);
    const kv = world.kv(id);
    expect(await kv.get(keys.message(1))).toBeUndefined();
    // Keys of seqs 1..5 left the newest 10,000 appends: forgotten, their seq -> key records too.
    for (let seq = 1; seq <= 5; seq++) {
      expect(await kv.get(keys.idempotency(`k${seq}`))).toBeUndefined();
      expect(await kv.get(keys.trimmedKey(seq))).toBeUndefined();
    }
    // Keys of seqs 6..20 are still remembered: a retry replays the original.
    for (let seq = 6; seq <= keyed; seq++) {
      expect(await kv.get(keys.trimmedKey(seq))).toBeDefined();
      const retry = await run({
        type: 'append',
        contextId: id,
        message: message(`m${seq}`),
        idempotencyKey: `k${seq}`,
      } as Omit<Command, 'now'>);
      expect(retry).toMatchObject({ type: 'append', seq, replayed: true });
    }
    // A forgotten key appends anew.
    const fresh = await run({
      type: 'append',
      contextId: id,
      message: message('m1'),
      idempotencyKey: 'k1',
    } as Omit<Command, 'now'>);
    expect(fresh).toMatchObject({ type: 'append', seq: total + 1, replayed: false });
  }, 60_000);
});

describe('streams after a trim', () => {
  it('report history as starting after the trimmed messages, so an older cursor gets a gap', async () => {
    const world = new World();
    const id = 'streamed';
    let step = 0;
    const run = (command: Omit<Command, 'now'>) => world.run({ ...command, now: stamp(++step) } as Command);
    await run({
      type: 'put_context',
      contextId: id,
      changes: { token_budget: 5, policy: { strategy: 'last_n', config: { limit: 2 } } },
      defaults: { triggerRatio: 0.7, policy: { strategy: 'last_n', config: { limit: 2 } } },
    } as Omit<Command, 'now'>);
    for (let seq = 1; seq <= 20; seq++) {
      await run({
        type: 'append',
        contextId: id,
        message: { role: 'user', parts: [{ type: 'text', text: `m${seq}` }], tokenCount: 1, partTokens: [1] },
      } as Omit<Command, 'now'>);
    }
    const untrimmed = await world.sm.streamPosition(world.group(id), world.kv(id), id);
    expect(untrimmed?.retainedFromVersion).toBe(1);
    await run({ type: 'ack_archived', contextId: id, upToSeq: 15, tailKeep: 3 } as Omit<Command, 'now'>);
    // Seqs 1..12 were trimmed (15 archived, the newest 3 of them kept): history starts at seq 13,
    // which is version 13 (one version per append, no manual compaction).
    const trimmed = await world.sm.streamPosition(world.group(id), world.kv(id), id);
    expect(trimmed).toMatchObject({ version: 20, lastSeq: 20, retainedFromVersion: 13 });
  });
});
