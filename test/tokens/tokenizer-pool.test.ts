// The tokenizer pool under hostile input and faults: a text that would take minutes of BPE work
// (one 1,000,000-letter "word") is counted in bounded work and does not hold up others; a worker that
// overruns its batch budget or dies is replaced, the texts it had counted keep their exact counts,
// the one it was counting gets the chars4 fallback, and every text queued behind it is still served.
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { chars4Count } from '../../src/tokens/chars4.js';
import { longRunCuts, longRunLimits, type LongRunLimits } from '../../src/tokens/long-runs.js';
import { segmentText } from '../../src/tokens/segments.js';
import {
  TokenizerPool,
  type FallbackEvent,
  type TokenizerPoolOptions,
} from '../../src/tokens/tokenizer-pool.js';
import { chatText, randomLetters } from './text-arbitraries.js';

const exact = (text: string): number => countTokens(text, { disallowedSpecial: new Set() });

/** What the worker computes: the text counted in the slices longRunCuts chooses. */
const countInSlices = (text: string, limits: LongRunLimits): number => {
  let total = 0;
  let start = 0;
  for (const cut of longRunCuts(text, limits)) {
    total += exact(text.slice(start, cut));
    start = cut;
  }
  return total + exact(text.slice(start));
};

const small: LongRunLimits = { sliceLength: 16, exactRunMax: 48, exactBudget: 64 };

describe('longRunCuts', () => {
  it('leaves ordinary text whole', () => {
    fc.assert(
      fc.property(chatText, (text) => {
        expect(longRunCuts(text, longRunLimits)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it('cuts only inside runs longer than the slice, on code point boundaries, and keeps counts close', () => {
    const piece = fc.constantFrom('a', 'Zb', 'é', '\u0301', '!', '🙂', ' ', '\n', '7', '字', ' x');
    const text = fc
      .array(fc.tuple(piece, fc.integer({ min: 1, max: 120 })), { maxLength: 6 })
      .map((runs) => runs.map(([unit, times]) => unit.repeat(times)).join(''));
    fc.assert(
      fc.property(text, (sample) => {
        const cuts = longRunCuts(sample, small);
        for (const [index, cut] of cuts.entries()) {
          expect(cut).toBeGreaterThan(index === 0 ? 0 : (cuts[index - 1] as number));
          expect(cut).toBeLessThan(sample.length + 1);
          const low = sample.charCodeAt(cut);
          expect(low >= 0xdc00 && low <= 0xdfff).toBe(false);
        }
        // Each cut loses at most the merges across it: a couple of tokens, never more.
        expect(Math.abs(countInSlices(sample, small) - exact(sample))).toBeLessThanOrEqual(2 * cuts.length);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps runs within the exact budget whole, then slices', () => {
    const text = `${'a'.repeat(40)} ${'b'.repeat(40)} ${'c'.repeat(40)}`;
    // 40 + 40 > the budget of 64: the second long run is sliced, and so is the third.
    expect(longRunCuts(text, small)).toEqual([57, 73, 98, 114]);
    expect(longRunCuts('x'.repeat(100), small)).toHaveLength(6);
  });
});

describe('segmentText', () => {
  it('gives back the text, in segments near the length, whose counts add up to the whole count', () => {
    fc.assert(
      fc.property(fc.array(chatText, { minLength: 1, maxLength: 40 }), (texts) => {
        const text = texts.join(' ');
        const segments = segmentText(text, 200);
        expect(segments.join('')).toBe(text);
        for (const segment of segments) expect(segment.length).toBeLessThanOrEqual(201);
        expect(segments.reduce((sum, segment) => sum + exact(segment), 0)).toBe(exact(text));
      }),
      { numRuns: 150 },
    );
  });

  it('never splits a surrogate pair when it has to cut inside a run', () => {
    const segments = segmentText('🙂'.repeat(50), 33);
    expect(segments.join('')).toBe('🙂'.repeat(50));
    for (const segment of segments) expect(segment).toMatch(/^(🙂)+$/u);
  });
});

describe('TokenizerPool under hostile texts and faults', () => {
  const pools: TokenizerPool[] = [];
  const start = async (options: Partial<TokenizerPoolOptions> = {}): Promise<TokenizerPool> => {
    const pool = await TokenizerPool.start({
      encoding: 'o200k_base',
      workers: 1,
      queuePartsMax: 100_000,
      ...options,
    });
    pools.push(pool);
    return pool;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });

  it('counts one word of 1,000,000 letters exactly (it used to take ~10 minutes)', async () => {
    const pool = await start();
    // Slices and segments fall on multiples of 8, and "aaaaaaaa" is one token: the count is exact.
    expect(await pool.count(['a'.repeat(1_000_000)])).toEqual([125_000]);
  }, 60_000);

  it('answers a short text sent after a 1 MB run of random letters before that run', async () => {
    const pool = await start();
    const order: string[] = [];
    const long = pool.count([randomLetters(1_000_000, 7)]).then((counts) => {
      order.push('long');
      return counts;
    });
    // Let the long text's first segments reach the worker before the short one arrives.
    await new Promise((resolve) => setImmediate(resolve));
    const short = pool.count(['two words']).then((counts) => {
      order.push('short');
      return counts;
    });
    expect(await short).toEqual([2]);
    const [count] = await long;
    expect(order).toEqual(['short', 'long']);
    // About 1.9 letters per token for random lowercase text (o200k).
    expect(count).toBeGreaterThan(400_000);
    expect(count).toBeLessThan(600_000);
  }, 60_000);

  it('replaces a worker that overruns its budget: counted texts keep their counts, the stalled one gets the fallback, the rest are served', async () => {
    const fallbacks: FallbackEvent[] = [];
    const exits: Error[] = [];
    const pool = await start({
      stallMarker: 'STALL HERE',
      batchTimeoutMs: 1000,
      onFallback: (event) => fallbacks.push(event),
      onWorkerExit: ({ error }) => exits.push(error),
    });
    const first = pool.count(['hello world', 'STALL HERE', 'the quick brown fox']);
    const queuedBehind = pool.count(['two words']);
    expect(await first).toEqual([2, chars4Count('STALL HERE'), 4]);
    expect(await queuedBehind).toEqual([2]);
    expect(fallbacks).toEqual([{ reason: 'overrun', length: 'STALL HERE'.length }]);
    expect(exits).toHaveLength(1);
    expect(exits[0]?.message).toMatch(/overran its 1000 ms budget/);
    expect(pool.stats()).toMatchObject({ restarts: 1, fallbacks: 1, queuedParts: 0, inflightBatches: 0 });
    // The replacement counts as before.
    expect(await pool.count(['hello world'])).toEqual([2]);
  }, 60_000);

  it('serves the texts held by a worker that dies, the one it was counting by the fallback', async () => {
    const fallbacks: FallbackEvent[] = [];
    const pool = await start({ stallMarker: 'STALL HERE', onFallback: (event) => fallbacks.push(event) });
    // The marker comes first, so it is the text in progress whenever the kill lands.
    const held = pool.count(['STALL HERE', 'hello world', 'one more']);
    // Wait until the batch is with the worker, then kill it as a crash would.
    const deadline = Date.now() + 10_000;
    while (pool.stats().inflightBatches === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await pool.crashWorker(0);
    expect(await held).toEqual([chars4Count('STALL HERE'), 2, 2]);
    expect(fallbacks.map((event) => event.reason)).toEqual(['crash']);
  }, 60_000);

  it('with two workers, one stalled worker does not hold up the other', async () => {
    const pool = await start({ workers: 2, stallMarker: 'STALL HERE', batchTimeoutMs: 60_000 });
    const stalled = pool.count(['STALL HERE']);
    const deadline = Date.now() + 10_000;
    while (pool.stats().inflightBatches === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (let round = 0; round < 20; round++) expect(await pool.count(['hello world'])).toEqual([2]);
    const refused = expect(stalled).rejects.toThrow(/closed/);
    await pool.close();
    await refused;
  }, 60_000);
});
