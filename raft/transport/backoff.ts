// Reconnect delays: exponential in the number of consecutive failures, capped, with "equal
// jitter" (half fixed, half random) so peers that lost the same node do not all redial in step,
// while the delay never collapses to zero and hammers a peer that is still down.

export interface BackoffMs {
  readonly initial: number;
  readonly max: number;
}

/** Delay before attempt `failures` (1 = the first retry). `random` returns a float in [0, 1). */
export const backoffDelayMs = (failures: number, backoff: BackoffMs, random: () => number): number => {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceilingMs = Math.min(backoff.max, backoff.initial * 2 ** exponent);
  return ceilingMs / 2 + (ceilingMs / 2) * random();
};
