// The byte accounting compaction relies on (host/compaction.ts, logRetainBytes): for any retained log,
// the data bytes of a range are the sum of its retained entries', and indexKeepingBytes names the lowest
// index whose following entries up to `high` fit the budget, never one below the compaction point.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { RaftLog } from '../../../raft/core/raft-log.js';
import { EntryKind } from '../../../raft/core/types.js';
import type { Entry } from '../../../raft/core/types.js';

const logOf = (compactedThrough: number, sizes: readonly number[]): { log: RaftLog; entries: Entry[] } => {
  const entries = sizes.map((size, i) => ({
    term: 1,
    index: compactedThrough + 1 + i,
    kind: EntryKind.Normal,
    data: new Uint8Array(size),
  }));
  const snapshot = { index: compactedThrough, term: 1, conf: { voters: ['a'], learners: [] } };
  const last = compactedThrough + sizes.length;
  return { log: new RaftLog(snapshot, entries, last, last), entries };
};

const bytesIn = (entries: readonly Entry[], low: number, high: number): number =>
  entries.filter((e) => e.index > low && e.index <= high).reduce((sum, e) => sum + e.data.byteLength, 0);

describe('RaftLog byte accounting', () => {
  it('dataBytesBetween sums the retained entries in (low, high]', () => {
    fc.assert(
      fc.property(
        fc.nat(50),
        fc.array(fc.nat(2_000), { maxLength: 40 }),
        fc.integer({ min: -5, max: 100 }),
        fc.integer({ min: -5, max: 100 }),
        (compacted, sizes, low, high) => {
          const { log, entries } = logOf(compacted, sizes);
          expect(log.dataBytesBetween(low, high)).toBe(bytesIn(entries, low, high));
        },
      ),
    );
  });

  it('indexKeepingBytes keeps at most the budget, as much of it as whole entries allow', () => {
    fc.assert(
      fc.property(
        fc.nat(50),
        fc.array(fc.nat(2_000), { minLength: 1, maxLength: 40 }),
        fc.nat(100),
        fc.nat(10_000),
        (compacted, sizes, offset, budget) => {
          const { log, entries } = logOf(compacted, sizes);
          const high = compacted + 1 + (offset % sizes.length);
          const index = log.indexKeepingBytes(high, budget);
          expect(index).toBeGreaterThanOrEqual(compacted);
          expect(index).toBeLessThanOrEqual(high);
          expect(bytesIn(entries, index, high)).toBeLessThanOrEqual(budget);
          if (index > compacted) expect(bytesIn(entries, index - 1, high)).toBeGreaterThan(budget);
        },
      ),
    );
  });
});
