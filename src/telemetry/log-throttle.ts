// At most one log line per key (a peer and a reason, say) per window: a dead leader is retried many
// times a second, and each retry must not become a line of its own.

export const defaultLogThrottleMs = 10_000;

/** Returns a gate: true when a line for `key` may be logged now (and then closes for `windowMs`). */
export const logThrottle = (
  windowMs: number = defaultLogThrottleMs,
  now: () => number = Date.now,
): ((key: string) => boolean) => {
  const lastLogged = new Map<string, number>();
  return (key) => {
    const at = now();
    if (at - (lastLogged.get(key) ?? 0) < windowMs) return false;
    lastLogged.set(key, at);
    return true;
  };
};
