// The snapshot file format: whatever the pairs and however the bytes arrive in pieces, parsing gives
// back exactly the pairs encoded; any single damaged byte, and any truncation, is refused.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  encodeSnapshot,
  SnapshotFormatError,
  SnapshotParser,
  type SnapshotHeader,
} from '../../src/snapshot/format.js';

const header: SnapshotHeader = {
  format: 1,
  node_name: 'n1',
  created_at: '2026-01-01T00:00:00.000Z',
  clustered: false,
};

const pairsArbitrary = fc.uniqueArray(
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ maxLength: 300 })),
  { maxLength: 30, selector: ([key]) => Buffer.from(key).toString('hex') },
);

const encode = async (
  pairs: readonly (readonly [Uint8Array, Uint8Array])[],
  chunkBytes: number,
): Promise<Buffer> => {
  const source = (async function* () {
    yield* pairs;
  })();
  const pieces: Buffer[] = [];
  for await (const piece of encodeSnapshot(header, source, chunkBytes)) pieces.push(piece);
  return Buffer.concat(pieces);
};

/** Parses `bytes` fed in pieces cut at `cuts`. */
const parse = (bytes: Buffer, cuts: readonly number[]) => {
  const pairs: [string, string][] = [];
  const parser = new SnapshotParser((key, value) => pairs.push([key.toString('hex'), value.toString('hex')]));
  let from = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)) {
    parser.push(bytes.subarray(from, cut));
    from = cut;
  }
  parser.push(bytes.subarray(from));
  return { summary: parser.finish(), pairs };
};

describe('snapshot format', () => {
  it('round-trips any pairs however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(
        pairsArbitrary,
        fc.array(fc.nat()),
        fc.integer({ min: 1, max: 2_000 }),
        async (pairs, cuts, chunk) => {
          const bytes = await encode(pairs, chunk);
          const { summary, pairs: parsed } = parse(bytes, cuts);
          expect(summary.header).toEqual(header);
          expect(summary.pairs).toBe(pairs.length);
          expect(parsed).toEqual(
            pairs.map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses any single damaged byte and any truncation', async () => {
    await fc.assert(
      fc.asyncProperty(
        pairsArbitrary,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        async (pairs, at, flip) => {
          const bytes = await encode(pairs, 64);
          const damaged = Buffer.from(bytes);
          const index = at % damaged.length;
          damaged[index] = (damaged[index] ?? 0) ^ flip;
          expect(() => parse(damaged, [])).toThrow(SnapshotFormatError);
          expect(() => parse(bytes.subarray(0, index), [])).toThrow(SnapshotFormatError);
          expect(() => parse(Buffer.concat([bytes, Buffer.of(0)]), [])).toThrow(SnapshotFormatError);
        },
      ),
      { numRuns: 200 },
    );
  });
});
