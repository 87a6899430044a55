// A poison entry cannot take a cluster down (issue 15, item 4). Every replica applies every committed
// entry, so an entry whose apply throws would stop every replica, and again after every restart
// (the host exits on an apply exception and replays the entry when it comes back). Fuzzed here over
// random states and random poison payloads, each applied to two independent replicas:
// - apply never throws;
// - both replicas answer alike (one with the default cache and writes persisted at once, the other
//   with a one-context cache and writes held back, so caches and the dirty overlay are exercised);
// - an entry refused as malformed leaves the stored state byte-identical;
// - one that decodes is a valid command, whose effect the model predicts like any other;
// - valid commands keep applying as the model expects afterwards, on both replicas alike.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCommand } from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';
import { isCommandError } from '../../src/context/results.js';
import type { CommandResult } from '../../src/context/results.js';
import { contextIds, intentArb, intentsArb } from './arbitraries.js';
import type { Intent } from './arbitraries.js';
import { checkContext, ContextModel } from './model.js';
import { blindPoisonArb, commandMutationArb, encodePoison, mutateCommand } from './poison-arbitraries.js';
import type { CommandMutation, Poison } from './poison-arbitraries.js';
import { World } from './world.js';

/** Runs one valid command on every replica; all must answer as the model predicts. */
const step = async (model: ContextModel, replicas: readonly World[], intent: Intent): Promise<void> => {
  const command = model.resolve(intent);
  const results: CommandResult[] = [];
  for (const replica of replicas) results.push(await replica.run(command));
  for (const result of results.slice(1)) expect(result).toEqual(results[0]);
  model.apply(command, results[0] ?? { type: 'noop' }, replicas[0]?.lastEvents ?? []);
};

/** Proposes raw bytes; an apply exception surfaces as the rejection, reported with the entry. */
const applyPoison = async (world: World, poison: Poison): Promise<CommandResult> => {
  world.lastEvents = [];
  try {
    const outcome = await world.host.propose(poison.group, poison.bytes);
    if (!outcome.ok) throw new Error(`proposal failed: ${outcome.code}`);
    return outcome.result;
  } catch (error) {
    const hex = Buffer.from(poison.bytes).toString('hex');
    const shown = hex.length > 200 ? `${hex.slice(0, 200)}… (${poison.bytes.length} bytes)` : hex;
    throw new Error(`apply threw on ${poison.label} (${shown})`, {
      cause: error,
    });
  }
};

/** The stored pairs, groups without any left out (proposing to a group creates its empty space). */
const stored = (world: World): Record<number, [string, string][]> =>
  Object.fromEntries(Object.entries(world.dump()).filter(([, pairs]) => pairs.length > 0));

const decodedOrUndefined = (bytes: Uint8Array): Command | undefined => {
  try {
    return decodeCommand(bytes);
  } catch {
    return undefined;
  }
};

type PoisonSpec =
  { readonly blind: Poison } | { readonly intent: Intent; readonly mutation: CommandMutation };

const poisonSpecArb: fc.Arbitrary<PoisonSpec> = fc.oneof(
  { weight: 1, arbitrary: blindPoisonArb.map((blind) => ({ blind })) },
  { weight: 2, arbitrary: fc.record({ intent: intentArb, mutation: commandMutationArb }) },
);

/** The poison entry for `spec` in the model's current state (a mutation of a command it would run). */
const poisonFor = (spec: PoisonSpec, model: ContextModel, world: World): Poison => {
  if ('blind' in spec) {
    // One that happens to decode goes to its context's group, where the model knows the context.
    const command = decodedOrUndefined(spec.blind.bytes);
    return command === undefined ? spec.blind : { ...spec.blind, group: world.group(command.contextId) };
  }
  const command = model.resolve(spec.intent);
  const { pick, how, value } = spec.mutation;
  return {
    label: `${command.type} with a node ${how === 'add' ? 'added' : `${how}d`}`,
    bytes: encodePoison(mutateCommand(command, pick, how, value)),
    group: world.group(command.contextId),
  };
};

describe('poison entries', () => {
  it('apply is total and deterministic, a refused entry writes nothing, and valid commands go on as modelled', async () => {
    await fc.assert(
      fc.asyncProperty(
        intentsArb(20),
        fc.array(poisonSpecArb, { minLength: 1, maxLength: 3 }),
        fc.array(intentArb, { maxLength: 8 }),
        async (intents, specs, after) => {
          const model = new ContextModel();
          const replicas = [new World(), new World({ deferPersist: true, cacheContextsMax: 1 })] as const;
          for (const intent of intents) await step(model, replicas, intent);
          for (const spec of specs) {
            const poison = poisonFor(spec, model, replicas[0]);
            const before = replicas.map(stored);
            const results: CommandResult[] = [];
            for (const replica of replicas) results.push(await applyPoison(replica, poison));
            expect(results[1]).toEqual(results[0]);
            const result = results[0] ?? { type: 'noop' };
            const command = decodedOrUndefined(poison.bytes);
            if (poison.bytes.length === 0) {
              // The empty entry is the leader's no-op of a new term, never a command.
              expect(result).toEqual({ type: 'noop' });
              expect(replicas.map(stored)).toEqual(before);
            } else if (command === undefined || (isCommandError(result) && result.error === 'internal')) {
              expect(result).toMatchObject({ error: 'internal' });
              expect(replicas.map(stored)).toEqual(before);
            } else {
              model.apply(command, result, replicas[0]?.lastEvents ?? []);
            }
          }
          for (const intent of after) await step(model, replicas, intent);
          for (const id of contextIds) await checkContext(replicas[0], model, id);
          expect(stored(replicas[1])).toEqual(stored(replicas[0]));
        },
      ),
      { numRuns: 300 },
    );
  });
});
