// What the archiver tests read from a running node over HTTP: a context's counters, one metric, and a
// bounded wait for a condition.

export interface ContextCounters {
  readonly version: number;
  readonly last_seq: number;
  readonly archived_seq: number;
}

export const context = async (base: string, id: string): Promise<ContextCounters> =>
  (await (await fetch(`${base}/v1/contexts/${id}`)).json()) as ContextCounters;

/** The value of metric `name` (its first series), or NaN when the node does not report it. */
export const metric = async (base: string, name: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
};

/** Polls `check` every 100 ms; throws naming `what` after `timeoutMs`. */
export const eventually = async (
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
};
