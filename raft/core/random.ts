// The one seeded generator (mulberry32): small, fast, and good enough for election jitter. The core
// never draws randomness itself (it is injected as RaftConfig.random); the host seeds one stream per
// group from it, and tests and the simulator replay exactly from a seed with it.

/** A stream of uniformly distributed 32-bit unsigned integers from `seed`. */
export const mulberry32 = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
};

/** A stream of floats in [0, 1) from `seed`: the contract of RaftConfig.random. */
export const seededRandom = (seed: number): (() => number) => {
  const next = mulberry32(seed);
  return () => next() / 0x1_0000_0000;
};
