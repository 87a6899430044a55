// Property tests of the context state machine (src/context/state-machine.ts): random sequences of
// PUT / PATCH / DELETE / append / compact commands over several contexts sharing Raft groups, checked
// against a reference model of the contract (model.ts) after every command, plus determinism and
// snapshot/restore as byte-for-byte comparisons of the stored key-value pairs.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/context/commands.js';
import type { CommandResult } from '../../src/context/results.js';
import { contextIds, draftArb, intentsArb } from './arbitraries.js';
import { checkContext, checkPolicyAfterAppend, checkWindow, ContextModel, overThreshold } from './model.js';
import { stamp, World } from './world.js';

const runs = (numRuns: number) => ({ numRuns });

/** Resolves and runs `intents` on `world`, checking each step against the model. */
const runChecked = async (world: World, intents: Parameters<ContextModel['resolve']>[0][]) => {
  const model = new ContextModel();
  const commands: Command[] = [];
  const results: CommandResult[] = [];
  for (const intent of intents) {
    const command = model.resolve(intent);
    const result = await world.run(command);
    const outcome = model.apply(command, result, world.lastEvents);
    commands.push(command);
    results.push(result);
    await checkContext(world, model, command.contextId);
    const c = model.contexts.get(command.contextId);
    if (outcome.appended !== undefined && c !== undefined) {
      const window = await world.window(command.contextId);
      if (window === undefined) throw new Error('window vanished');
      checkPolicyAfterAppend(c, window, outcome.appended);
    }
  }
  return { model, commands, results };
};

/** Runs fixed commands on a world, returning the results. */
const replay = async (world: World, commands: readonly Command[], flushes?: readonly boolean[]) => {
  const results: CommandResult[] = [];
  for (const [index, command] of commands.entries()) {
    results.push(await world.run(command));
    if (flushes?.[index] === true) world.host.flush();
  }
  return results;
};

describe('context state machine under random command sequences', () => {
  it('matches the model: seqs contiguous, versions +1 per change, used_tokens = sum of window, policies hold', async () => {
    await fc.assert(
      fc.asyncProperty(intentsArb(60), async (intents) => {
        const world = new World();
        const { model } = await runChecked(world, intents);
        for (const id of contextIds) await checkContext(world, model, id);
      }),
      runs(300),
    );
  });

  it('is deterministic: the same commands give byte-identical state and identical results on fresh instances', async () => {
    await fc.assert(
      fc.asyncProperty(
        intentsArb(50),
        fc.array(fc.boolean(), { maxLength: 60 }),
        async (intents, flushes) => {
          const first = new World();
          const { commands, results } = await runChecked(first, intents);
          // The second instance holds writes back (reads go through its overlay) and caches one
          // context only, so cache misses and dirty reads must not change anything either.
          const second = new World({ deferPersist: true, cacheContextsMax: 1 });
          expect(await replay(second, commands, flushes)).toEqual(results);
          expect(second.dump()).toEqual(first.dump());
          expect(second.sm.dirtyKeys()).toBe(0);
        },
      ),
      runs(50),
    );
  });

  it('snapshot of a group restored into another instance gives identical state, reads and future', async () => {
    await fc.assert(
      fc.asyncProperty(
        intentsArb(40),
        intentsArb(10),
        fc.array(draftArb, { minLength: 1, maxLength: 4 }),
        async (intents, otherIntents, after) => {
          const source = new World({ deferPersist: true });
          const { model } = await runChecked(source, intents);
          // The target has its own history (warm caches, other records of the same ids) first.
          const target = new World({ deferPersist: true, cacheContextsMax: 2 });
          await runChecked(target, otherIntents);
          for (const id of contextIds) await target.window(id);
          for (let group = 0; group < source.groupCount; group++) {
            await target.host.restore(group, await source.groupPairs(group));
          }
          expect(target.dump()).toEqual(source.dump());
          for (const id of contextIds) await checkContext(target, model, id);
          for (const id of contextIds) {
            expect(await target.window(id, 50)).toEqual(await source.window(id, 50));
            expect(await target.tail(id, 3, 1)).toEqual(await source.tail(id, 3, 1));
          }
          // Both continue identically from the snapshot.
          const next: Command[] = after.map((message, index) => ({
            type: 'append',
            contextId: contextIds[index % contextIds.length] ?? 'ctx-a',
            now: stamp(10_000 + index),
            message,
          }));
          expect(await replay(target, next)).toEqual(await replay(source, next));
          expect(target.dump()).toEqual(source.dump());
        },
      ),
      runs(40),
    );
  });

  it('pages tail (limit, offset) and export (from_seq, limit) exactly as slices of the log', async () => {
    await fc.assert(
      fc.asyncProperty(
        intentsArb(40),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 1, max: 7 }),
        async (intents, limit, offset, pageSize) => {
          const world = new World({ deferPersist: true });
          const { model } = await runChecked(world, intents);
          for (const id of contextIds) {
            const log = (model.contexts.get(id)?.log ?? []).map((m) => m.message);
            // Tail: skip `offset` newest, return the next `limit`, oldest first; [] past the start.
            const end = Math.max(0, log.length - offset);
            expect(await world.tail(id, limit, offset)).toEqual(log.slice(Math.max(0, end - limit), end));
            if (!model.contexts.has(id)) continue;
            // Export: follow next_from_seq to the end; it is present exactly while more remain.
            const exported = [];
            let fromSeq = offset % (log.length + 1);
            for (let page = 0; page <= log.length + 1; page++) {
              const got = await world.messages(id, fromSeq, pageSize);
              if (got === undefined) throw new Error('export vanished');
              exported.push(...got.messages);
              const last = got.messages[got.messages.length - 1];
              if (got.next_from_seq === undefined) break;
              expect(got.messages).toHaveLength(pageSize);
              expect(got.next_from_seq).toBe(last?.seq);
              fromSeq = got.next_from_seq;
            }
            expect(exported).toEqual(log.slice(offset % (log.length + 1)));
          }
        },
      ),
      runs(40),
    );
  });

  it('budget_tokens returns the newest suffix of the window that fits, judged against that budget', async () => {
    await fc.assert(
      fc.asyncProperty(intentsArb(40), fc.integer({ min: 1, max: 400 }), async (intents, budget) => {
        const world = new World();
        const { model } = await runChecked(world, intents);
        for (const id of contextIds) {
          const c = model.contexts.get(id);
          const full = await world.window(id);
          const cut = await world.window(id, budget);
          if (c === undefined || full === undefined || cut === undefined) {
            expect(cut).toBeUndefined();
            continue;
          }
          checkWindow(id, c, full);
          let first = full.messages.length;
          let used = 0;
          while (first > 0 && used + (full.messages[first - 1]?.token_count ?? 0) <= budget) {
            first--;
            used += full.messages[first]?.token_count ?? 0;
          }
          expect(cut.messages).toEqual(full.messages.slice(first));
          expect(cut.used_tokens).toBe(used);
          expect(cut.token_count).toBe(used);
          expect(cut.version).toBe(full.version);
          // The flag uses the overriding budget, on the whole window (API.md: "the flag uses it").
          expect(cut.needs_compaction).toBe(overThreshold(full.used_tokens, budget, c.triggerRatio));
        }
      }),
      runs(40),
    );
  });
});
