// Proves reconnect delays grow exponentially from `initial`, never exceed `max`, and keep at
// least half their ceiling whatever the jitter (fast-check over attempts and random draws).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../../raft/transport/backoff.js';

describe('backoffDelayMs', () => {
  it('stays within [ceiling/2, ceiling], the ceiling doubling per failure up to max', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (initial, extra, failures, draw) => {
          const backoff = { initial, max: initial + extra };
          const ceiling = Math.min(backoff.max, initial * 2 ** Math.min(failures - 1, 30));
          const delayMs = backoffDelayMs(failures, backoff, () => draw);
          expect(delayMs).toBeGreaterThanOrEqual(ceiling / 2);
          expect(delayMs).toBeLessThanOrEqual(ceiling);
        },
      ),
    );
  });

  it('doubles with each failure before reaching max', () => {
    const backoff = { initial: 100, max: 10_000 };
    const fixed = (): number => 0.5;
    expect([1, 2, 3, 4].map((failures) => backoffDelayMs(failures, backoff, fixed))).toEqual([
      75, 150, 300, 600,
    ]);
    expect(backoffDelayMs(50, backoff, fixed)).toBe(7_500);
  });
});
