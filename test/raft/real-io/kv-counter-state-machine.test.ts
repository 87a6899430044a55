// The real-I/O tests compare replicas through the kv-counter state machine, so its summary must depend
// only on the entries applied and their order, never on how the host split them into apply calls, and
// it must survive a restart (reload from the store) and a snapshot install (cache dropped).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AppliedEntry, GroupKv, GroupWriteBatch, KeyRange } from '../../../raft/api.js';
import {
  encodePut,
  fromUserKey,
  KvCounterStateMachine,
  userKey,
} from '../../../bench/raft-process/kv-counter-state-machine.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const byKey = ([a]: [string, unknown], [b]: [string, unknown]): number => a.localeCompare(b);

/** A group's space as a map; writes land at once (enough to model "durable after the batch"). */
class MapKv implements GroupKv, GroupWriteBatch {
  readonly data = new Map<string, Uint8Array>();
  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.data.get(hex(key));
  }
  iterate(_range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    const sorted = [...this.data].sort(byKey);
    return (async function* () {
      for (const [key, value] of sorted) yield [Buffer.from(key, 'hex'), value] as const;
    })();
  }
  put(key: Uint8Array, value: Uint8Array): void {
    this.data.set(hex(key), value);
  }
  del(key: Uint8Array): void {
    this.data.delete(hex(key));
  }
}

const entryArb = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 40 }),
  fc
    .tuple(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 16 }))
    .map(([key, value]) => encodePut(key, value)),
);

/** Applies `data` as entries 1..n in calls of the given sizes (the rest in one last call). */
const applyInCalls = async (
  machine: KvCounterStateMachine,
  kv: MapKv,
  data: readonly Uint8Array[],
  sizes: readonly number[],
): Promise<number[]> => {
  const entries: AppliedEntry[] = data.map((bytes, i) => ({ index: i + 1, term: 1, data: bytes }));
  const counts: number[] = [];
  let at = 0;
  for (const size of [...sizes, entries.length]) {
    if (at >= entries.length) break;
    const run = entries.slice(at, at + Math.max(1, size));
    at += run.length;
    for (const result of await machine.apply(7, run, kv, kv)) counts.push(result.count);
  }
  return counts;
};

describe('KvCounterStateMachine', () => {
  it('gives the same summary and space however the entries are split into apply calls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entryArb, { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 10 }),
        async (data, sizes) => {
          const one = { machine: new KvCounterStateMachine(), kv: new MapKv() };
          const split = { machine: new KvCounterStateMachine(), kv: new MapKv() };
          const countsOne = await applyInCalls(one.machine, one.kv, data, []);
          const countsSplit = await applyInCalls(split.machine, split.kv, data, sizes);
          expect(countsSplit).toEqual(countsOne);
          expect(countsOne).toEqual(data.map((_, i) => i + 1));
          expect(await split.machine.summary(7, split.kv)).toEqual(await one.machine.summary(7, one.kv));
          expect([...split.kv.data].sort(byKey)).toEqual([...one.kv.data].sort(byKey));
        },
      ),
    );
  });

  it('stores puts under their key, and resumes from the stored summary after a restart or restore', async () => {
    const kv = new MapKv();
    const first = new KvCounterStateMachine();
    const key = new TextEncoder().encode('k');
    await first.apply(7, [{ index: 1, term: 1, data: encodePut(key, Uint8Array.of(9)) }], kv, kv);
    expect(kv.data.get(hex(userKey(key)))).toEqual(Uint8Array.of(9));
    expect(fromUserKey(userKey(key))).toEqual(key);
    const before = await first.summary(7, kv);

    // A new instance over the same store (a restarted process) continues the same chain.
    const restarted = new KvCounterStateMachine();
    const next: AppliedEntry = { index: 2, term: 1, data: Uint8Array.of(1, 2, 3) };
    await restarted.apply(7, [next], kv, kv);
    await first.apply(7, [next], new MapKv(), kv);
    expect(await restarted.summary(7, kv)).toEqual(await first.summary(7, kv));
    expect((await restarted.summary(7, kv)).count).toBe(before.count + 1);

    // restored() drops the cache: the summary then comes from the (replaced) store.
    const replaced = new MapKv();
    restarted.restored(7, { index: 10, term: 2, conf: { voters: ['a'], learners: [] } });
    expect(await restarted.summary(7, replaced)).toEqual({ count: 0, digest: 0x811c9dc5 });
    expect(restarted.durableApplied(7)).toBe(10);
  });
});
