// Proves a group's stored log recovers exactly: fast-check runs random appends (many overwriting a
// suffix), compactions and reopens against a store, and compares what recovery loads with a model log.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BatchOp } from '../../../raft/api.js';
import type { Entry, SnapshotMeta } from '../../../raft/core/types.js';
import { StorageCorruptionError } from '../../../raft/storage/checksum-frame.js';
import { GroupLogIndex, recoverGroupLog } from '../../../raft/storage/group-log.js';
import { groupLogRange, logBatchFirstIndex } from '../../../raft/storage/keys.js';
import { encodeLogBatch } from '../../../raft/storage/log-codec.js';
import { MemoryStore } from './memory-store.js';

const GROUP = 7;

type Step =
  | { readonly type: 'append'; readonly back: number; readonly count: number; readonly term: number }
  | { readonly type: 'compact'; readonly fraction: number }
  | { readonly type: 'reopen' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant('append' as const),
      back: fc.nat({ max: 6 }),
      count: fc.integer({ min: 1, max: 5 }),
      term: fc.integer({ min: 1, max: 9 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('compact' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('reopen' as const) }) },
);

const storedBatches = async (store: MemoryStore): Promise<[number, Uint8Array][]> => {
  const batches: [number, Uint8Array][] = [];
  for await (const [key, value] of store.iterate(groupLogRange(GROUP)))
    batches.push([logBatchFirstIndex(key), value]);
  return batches;
};

const shape = (entries: readonly Entry[]) =>
  entries.map((entry) => [entry.index, entry.term, Array.from(entry.data)]);

const makeEntries = (first: number, count: number, term: number): Entry[] =>
  Array.from({ length: count }, (_, i) => ({
    index: first + i,
    term,
    kind: 0,
    data: Uint8Array.of(term, (first + i) & 0xff),
  }));

describe('group log storage', () => {
  it('recovers the model log after appends, overwrites, compactions and reopens', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 40 }), async (steps) => {
        const store = new MemoryStore();
        let index = new GroupLogIndex(GROUP);
        let model: Entry[] = [];
        let compaction: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
        const last = (): number => model.at(-1)?.index ?? compaction.index;
        for (const step of steps) {
          const ops: BatchOp[] = [];
          if (step.type === 'append') {
            const first = Math.max(compaction.index + 1, last() + 1 - step.back);
            const entries = makeEntries(first, step.count, step.term);
            index.append(entries, ops);
            model = model.filter((entry) => entry.index < first).concat(entries);
          } else if (step.type === 'compact') {
            const to = compaction.index + Math.floor(step.fraction * (last() - compaction.index));
            const term = model.find((entry) => entry.index === to)?.term ?? compaction.term;
            index.compact(to, ops);
            compaction = { ...compaction, index: to, term };
            model = model.filter((entry) => entry.index > to);
          } else {
            index = recoverGroupLog(GROUP, await storedBatches(store), compaction).index;
          }
          await store.write(ops, { sync: true });
          const recovered = recoverGroupLog(GROUP, await storedBatches(store), compaction);
          expect(shape(recovered.entries)).toEqual(shape(model));
          // The index tracks every stored batch: nothing is left behind that a later delete would miss.
          expect((await storedBatches(store)).length).toBe(index.batchCount());
          expect(recovered.index.batchCount()).toBe(index.batchCount());
        }
      }),
      { numRuns: 150 },
    );
  });

  it('deletes whole overwritten batches in the same write and keeps a straddling one', () => {
    const index = new GroupLogIndex(GROUP);
    index.append(makeEntries(1, 3, 1), []);
    index.append(makeEntries(4, 3, 1), []);
    index.append(makeEntries(7, 3, 1), []);
    const ops: BatchOp[] = [];
    index.append(makeEntries(5, 2, 2), ops);
    const deleted = ops.filter((op) => op.type === 'del').map((op) => logBatchFirstIndex(op.key));
    expect(deleted).toEqual([7]);
    expect(ops.filter((op) => op.type === 'put').map((op) => logBatchFirstIndex(op.key))).toEqual([5]);
    expect(index.lastIndex()).toBe(6);
    expect(index.batchCount()).toBe(3);
  });

  it('compaction deletes only batches wholly at or below the point', () => {
    const index = new GroupLogIndex(GROUP);
    index.append(makeEntries(1, 3, 1), []);
    index.append(makeEntries(4, 3, 1), []);
    const ops: BatchOp[] = [];
    index.compact(5, ops);
    expect(ops.map((op) => [op.type, logBatchFirstIndex(op.key)])).toEqual([['del', 1]]);
    expect(index.batchCount()).toBe(1);
  });

  it('reports a gap in the stored log as corruption', () => {
    const batches: [number, Uint8Array][] = [
      [1, encodeLogBatch(makeEntries(1, 2, 1))],
      [5, encodeLogBatch(makeEntries(5, 2, 1))],
    ];
    const compaction: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
    expect(() => recoverGroupLog(GROUP, batches, compaction)).toThrow(StorageCorruptionError);
    // Below the compaction point the same gap loses nothing: recovery starts after it.
    const recovered = recoverGroupLog(GROUP, batches, { ...compaction, index: 4, term: 1 });
    expect(shape(recovered.entries)).toEqual(shape(makeEntries(5, 2, 1)));
  });
});
