// GroupReader.scanWithin reads a key range under a byte budget, over the durable store with the
// applied-but-not-durable overlay on top. Property: it returns exactly what a full read of the merged
// view would give, cut to the budget from the requested end (at least one pair), and says whether
// the cut left anything out.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DirtyOverlay, type DirtyWrite } from '../../src/context/dirty-overlay.js';
import { GroupReader, type KeyValue } from '../../src/context/group-access.js';
import { keyString } from '../../src/context/keys.js';
import { MemoryKv } from '../../src/context/memory-kv.js';

const key = (n: number): Uint8Array => Uint8Array.of(0x10, n);
const value = (size: number, fill: number): Uint8Array => new Uint8Array(size).fill(fill);

const pairArb = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1, max: 50 }));
const writeArb = fc.tuple(fc.integer({ min: 0, max: 40 }), fc.option(fc.integer({ min: 1, max: 50 })));

/** The merged view of the range, in key order, the slow way. */
const mergedView = (
  durable: Map<number, number>,
  dirty: Map<number, number | null>,
  low: number,
  high: number,
) => {
  const view = new Map(durable);
  for (const [k, size] of dirty) {
    if (size === null) view.delete(k);
    else view.set(k, size);
  }
  return [...view].filter(([k]) => k >= low && k <= high).sort(([a], [b]) => a - b);
};

describe('GroupReader.scanWithin', () => {
  it('equals the merged view cut to the budget from the asked end', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(pairArb, { maxLength: 30 }),
        fc.array(writeArb, { maxLength: 10 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        async (pairs, writes, a, b, bytesMax, fromHigh) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          const kv = new MemoryKv();
          const durable = new Map<number, number>();
          for (const [k, size] of pairs) {
            kv.put(key(k), value(size, 1));
            durable.set(k, size);
          }
          const overlay = new DirtyOverlay();
          const dirty = new Map<number, number | null>();
          const staged = new Map<string, DirtyWrite>();
          for (const [k, size] of writes) {
            staged.set(keyString(key(k)), { key: key(k), value: size === null ? null : value(size, 2) });
            dirty.set(k, size);
          }
          overlay.record(7, 1, staged);
          const reader = new GroupReader(overlay, 7, kv);

          const result = await reader.scanWithin(key(low), key(high), bytesMax, fromHigh);

          const view = mergedView(durable, dirty, low, high);
          const ordered = fromHigh ? [...view].reverse() : view;
          const kept: [number, number][] = [];
          let bytes = 0;
          for (const entry of ordered) {
            bytes += entry[1];
            if (bytes > bytesMax && kept.length > 0) break;
            kept.push(entry);
          }
          const expected = fromHigh ? kept.reverse() : kept;
          const got = result.pairs.map(([k, v]: KeyValue) => [k[1], v.byteLength]);
          expect(got).toEqual(expected);
          expect(result.complete).toBe(kept.length === view.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
