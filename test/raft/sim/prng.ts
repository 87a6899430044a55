// A small seeded PRNG (mulberry32) so one integer seed replays a whole simulation. Math.random is never
// used by the simulator: every random choice, including the hosts' election jitter, comes from here.

import { mulberry32 } from '../../../raft/core/random.js';

export class Prng {
  private readonly stream: () => number;

  constructor(seed: number) {
    // Mix the seed once so that nearby seeds (1, 2, 3 ...) start far apart.
    this.stream = mulberry32((Math.imul(seed | 0, 0x9e3779b1) ^ 0x5bd1e995) >>> 0);
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextUint32(): number {
    return this.stream();
  }

  /** A float in [0, 1), the contract of `RaftHostOptions.random`. */
  next(): number {
    return this.nextUint32() / 4_294_967_296;
  }

  /** An integer in [0, maxExclusive). */
  int(maxExclusive: number): number {
    if (!Number.isInteger(maxExclusive) || maxExclusive <= 0) {
      throw new RangeError(`Prng.int needs a positive integer bound, got ${maxExclusive}`);
    }
    return Math.floor(this.next() * maxExclusive);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new RangeError('Prng.pick from an empty list');
    return item;
  }

  /**
   * An independent stream derived from this one. Consumers that draw a varying number of values
   * (a host's election timers) get their own stream, so they do not shift the scheduler's choices.
   */
  fork(): Prng {
    return new Prng(this.nextUint32());
  }
}
