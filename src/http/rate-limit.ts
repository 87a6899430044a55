// Per-API-key request rates (429 rate_limited with Retry-After), when configured: a token bucket per
// key, refilled continuously at `perSecond` up to `burst`. Keys are known in advance (the configured
// list), so the buckets are a fixed array: a flood of requests with made-up keys never creates one.

export interface RateLimiter {
  /** Undefined when the request may go on; else the seconds after which one more token exists. */
  take(keyIndex: number): number | undefined;
}

export const createRateLimiter = (
  keys: number,
  perSecond: number,
  burst: number,
  now: () => number = () => performance.now(),
): RateLimiter | undefined => {
  if (perSecond <= 0 || keys === 0) return undefined;
  const tokens = new Array<number>(keys).fill(burst);
  const refilledAt = new Array<number>(keys).fill(now());
  return {
    take: (keyIndex) => {
      const at = now();
      const elapsedMs = at - (refilledAt[keyIndex] ?? at);
      const available = Math.min(burst, (tokens[keyIndex] ?? burst) + (elapsedMs * perSecond) / 1000);
      refilledAt[keyIndex] = at;
      if (available >= 1) {
        tokens[keyIndex] = available - 1;
        return undefined;
      }
      tokens[keyIndex] = available;
      return Math.max(1, Math.ceil((1 - available) / perSecond));
    },
  };
};
