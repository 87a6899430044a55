// Property tests of `ack_archived` (src/context/apply-archive.ts): random command sequences with the
// archiver's acks mixed in, checked against the reference model (model.ts) after every command.
// archived_seq only grows and never passes last_seq; the store loses exactly the archived messages
// beyond the newest tail_keep, never one newer than archived_seq and never one of the LLM window;
// idempotent replays, the window and version are unaffected; the same commands give byte-identical
// stores (every replica trims alike) and a snapshot carries only the hot tail.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/context/commands.js';
import { ContextKeys } from '../../src/context/keys.js';
import { decodeWindowRecord } from '../../src/context/records.js';
import type { CommandResult } from '../../src/context/results.js';
import { contextIds, intentsArb, intentsWithAcksArb } from './arbitraries.js';
import { checkContext, checkPolicyAfterAppend, ContextModel } from './model.js';
import type { ModelContext } from './model.js';
import { World } from './world.js';

const runs = (numRuns: number) => ({ numRuns });

const storedWindow = async (world: World, id: string) => {
  world.host.flush();
  const data = await world.kv(id).get(new ContextKeys(id).window());
  if (data === undefined) throw new Error(`${id}: no window record`);
  return decodeWindowRecord(data);
};

/** The trim went exactly as far as allowed: tail_keep, archived_seq and the window's oldest seq. */
const checkTrimBound = async (world: World, id: string, c: ModelContext, tailKeep: number) => {
  const window = await storedWindow(world, id);
  expect(window.trimmedThroughSeq).toBe(c.trimmedThrough);
  expect(window.trimmedThroughSeq).toBeLessThanOrEqual(window.archivedSeq);
  expect(window.trimmedThroughSeq).toBeLessThan(window.liveFromSeq);
  // Stopped short of archived - tail_keep only where the LLM window begins.
  if (window.trimmedThroughSeq < window.archivedSeq - tailKeep) {
    expect(window.trimmedThroughSeq).toBe(window.liveFromSeq - 1);
  }
};

const runChecked = async (world: World, intents: Parameters<ContextModel['resolve']>[0][]) => {
  const model = new ContextModel();
  const commands: Command[] = [];
  const results: CommandResult[] = [];
  for (const intent of intents) {
    const command = model.resolve(intent);
    const before = model.contexts.get(command.contextId)?.version;
    const result = await world.run(command);
    const outcome = model.apply(command, result, world.lastEvents);
    commands.push(command);
    results.push(result);
    const c = model.contexts.get(command.contextId);
    await checkContext(world, model, command.contextId);
    if (command.type === 'ack_archived' && c !== undefined) {
      expect(c.version).toBe(before);
      await checkTrimBound(world, command.contextId, c, command.tailKeep);
    }
    if (outcome.appended !== undefined && c !== undefined) {
      const window = await world.window(command.contextId);
      if (window === undefined) throw new Error('window vanished');
      checkPolicyAfterAppend(c, window, outcome.appended);
    }
  }
  return { model, commands, results };
};

describe('ack_archived under random command sequences', () => {
  it('matches the model: watermark monotonic and bounded, exactly the archived messages beyond tail_keep trimmed', async () => {
    await fc.assert(
      fc.asyncProperty(intentsWithAcksArb(80), async (intents) => {
        const world = new World({ deferPersist: true });
        const { model } = await runChecked(world, intents);
        for (const id of contextIds) await checkContext(world, model, id);
      }),
      runs(300),
    );
  });

  it('is deterministic, and a snapshot of a group carries only the hot tail', async () => {
    await fc.assert(
      fc.asyncProperty(intentsWithAcksArb(60), async (intents) => {
        const first = new World();
        const { model, commands, results } = await runChecked(first, intents);
        const second = new World({ deferPersist: true, cacheContextsMax: 1 });
        const replayed: CommandResult[] = [];
        for (const command of commands) replayed.push(await second.run(command));
        expect(replayed).toEqual(results);
        expect(second.dump()).toEqual(first.dump());

        const target = new World();
        for (let group = 0; group < first.groupCount; group++) {
          const pairs = await first.groupPairs(group);
          await target.host.restore(group, pairs);
        }
        for (const id of contextIds) {
          await checkContext(target, model, id);
          const c = model.contexts.get(id);
          if (c === undefined) continue;
          // No message key at or below the trim point travels in the snapshot.
          const keys = new ContextKeys(id);
          for (let seq = 1; seq <= c.trimmedThrough; seq++) {
            expect(await target.kv(id).get(keys.message(seq))).toBeUndefined();
          }
        }
      }),
      runs(60),
    );
  });

  it('without acks nothing is ever trimmed', async () => {
    await fc.assert(
      fc.asyncProperty(intentsArb(60), async (intents) => {
        const world = new World();
        const { model } = await runChecked(world, intents);
        for (const c of model.contexts.values()) expect(c.trimmedThrough).toBe(0);
      }),
      runs(50),
    );
  });
});
