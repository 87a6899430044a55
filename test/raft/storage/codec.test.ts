// Proves the stored encodings round-trip and that any corruption is caught: fast-check generates log
// batches and records, checks decode(encode(x)) = x, then flips random bytes and expects a throw.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry, EntryKind } from '../../../raft/core/types.js';
import { StorageCorruptionError } from '../../../raft/storage/checksum-frame.js';
import { decodeLogBatch, encodeLogBatch } from '../../../raft/storage/log-codec.js';
import {
  decodeAppliedState,
  decodeHardState,
  decodeSnapshotMeta,
  encodeAppliedState,
  encodeHardState,
  encodeSnapshotMeta,
} from '../../../raft/storage/record-codec.js';

const entryFields = fc.record({
  term: fc.nat({ max: 2 ** 40 }),
  kind: fc.constantFrom<EntryKind>(0, 1),
  data: fc.uint8Array({ maxLength: 64 }),
});

const batchArb = fc
  .tuple(
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 100 }),
    fc.array(entryFields, { minLength: 1, maxLength: 20 }),
  )
  .map(([firstIndex, fields]): Entry[] => fields.map((field, i) => ({ ...field, index: firstIndex + i })));

const normalize = (entries: readonly Entry[]) =>
  entries.map((entry) => ({ ...entry, data: Array.from(entry.data) }));

const confArb = fc.record({
  voters: fc.array(fc.string({ maxLength: 8 }), { maxLength: 5 }),
  learners: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
});
const metaArb = fc.record({ index: fc.nat(), term: fc.nat(), conf: confArb });
const hardStateArb = fc.record({
  term: fc.nat(),
  vote: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
  commit: fc.nat(),
});

/** Flips one bit of a copy of `value` at a position chosen by `at` in [0, 1). */
const flipBit = (value: Uint8Array, at: number, bit: number): Uint8Array => {
  const copy = Uint8Array.from(value);
  const position = Math.min(copy.length - 1, Math.floor(at * copy.length));
  copy[position] = (copy[position] ?? 0) ^ (1 << bit);
  return copy;
};

describe('log batch codec', () => {
  it('round-trips any contiguous batch', () => {
    fc.assert(
      fc.property(batchArb, (entries) => {
        const first = entries[0] as Entry;
        expect(normalize(decodeLogBatch(first.index, encodeLogBatch(entries)))).toEqual(normalize(entries));
      }),
    );
  });

  it('throws StorageCorruptionError when any bit of the value flips', () => {
    fc.assert(
      fc.property(
        batchArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.nat({ max: 7 }),
        (entries, at, bit) => {
          const first = entries[0] as Entry;
          const corrupt = flipBit(encodeLogBatch(entries), at, bit);
          expect(() => decodeLogBatch(first.index, corrupt)).toThrow(StorageCorruptionError);
        },
      ),
    );
  });

  it('refuses a batch read under another first index, and truncated values', () => {
    const entries: Entry[] = [{ index: 7, term: 2, kind: 0, data: Uint8Array.of(1) }];
    const value = encodeLogBatch(entries);
    expect(() => decodeLogBatch(8, value)).toThrow(StorageCorruptionError);
    expect(() => decodeLogBatch(7, value.subarray(0, 3))).toThrow(StorageCorruptionError);
    expect(() => decodeLogBatch(7, value.subarray(0, value.length - 1))).toThrow(StorageCorruptionError);
  });

  it('refuses to encode an empty or non-contiguous batch', () => {
    expect(() => encodeLogBatch([])).toThrow(RangeError);
    const gap: Entry[] = [
      { index: 1, term: 1, kind: 0, data: new Uint8Array(0) },
      { index: 3, term: 1, kind: 0, data: new Uint8Array(0) },
    ];
    expect(() => encodeLogBatch(gap)).toThrow(RangeError);
  });
});

describe('record codecs', () => {
  it('round-trip hard state, snapshot meta and applied state', () => {
    fc.assert(
      fc.property(hardStateArb, metaArb, (hardState, meta) => {
        expect(decodeHardState(encodeHardState(hardState))).toEqual(hardState);
        expect(decodeSnapshotMeta(encodeSnapshotMeta(meta))).toEqual(meta);
        expect(decodeAppliedState(encodeAppliedState(meta))).toEqual(meta);
      }),
    );
  });

  it('detect a flipped bit in any record', () => {
    fc.assert(
      fc.property(
        hardStateArb,
        metaArb,
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.nat({ max: 7 }),
        (hardState, meta, at, bit) => {
          expect(() => decodeHardState(flipBit(encodeHardState(hardState), at, bit))).toThrow(
            StorageCorruptionError,
          );
          expect(() => decodeSnapshotMeta(flipBit(encodeSnapshotMeta(meta), at, bit))).toThrow(
            StorageCorruptionError,
          );
        },
      ),
    );
  });

  it('refuses a well-framed record of the wrong shape', () => {
    expect(() =>
      decodeHardState(encodeSnapshotMeta({ index: 1, term: 1, conf: { voters: [], learners: [] } })),
    ).toThrow(StorageCorruptionError);
  });
});
