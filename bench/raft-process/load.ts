// A closed-loop proposal load for the benchmark: `concurrency` proposers, each proposing one entry at a
// time and the next as soon as it resolves, rotating over the given groups, for a fixed duration.
// It runs inside the process that leads the groups, so what is measured is propose() → applied on this
// node after a quorum persisted it (no HTTP or client in the way). Latencies are returned as raw
// microsecond samples so several processes' results can be merged into one distribution.

import type { ConsensusHost, GroupId } from '../../raft/index.js';

export interface LoadOptions {
  readonly durationMs: number;
  readonly concurrency: number;
  readonly entryBytes: number;
  /** Per-proposal timeout handed to the host. */
  readonly timeoutMs: number;
}

export interface LoadResult {
  readonly ok: number;
  /** Failures by code (NOT_LEADER, OVERLOADED, TIMEOUT, ...). */
  readonly failures: Record<string, number>;
  readonly elapsedMs: number;
  /** One sample per successful proposal, in microseconds. */
  readonly latenciesUs: Uint32Array;
}

/** Runs the load against `groups` (which should be led by `host`'s node). */
export const runLoad = async (
  host: ConsensusHost,
  groups: readonly GroupId[],
  options: LoadOptions,
): Promise<LoadResult> => {
  const failures: Record<string, number> = {};
  if (groups.length === 0 || options.concurrency <= 0) {
    return { ok: 0, failures, elapsedMs: 0, latenciesUs: new Uint32Array(0) };
  }
  // Grows by doubling; sized for a typical run so few copies happen.
  let samples = new Uint32Array(1 << 16);
  let ok = 0;
  const record = (micros: number): void => {
    if (ok === samples.length) {
      const grown = new Uint32Array(samples.length * 2);
      grown.set(samples);
      samples = grown;
    }
    samples[ok] = Math.min(0xffff_ffff, Math.max(1, Math.round(micros)));
    ok += 1;
  };
  const payload = new Uint8Array(options.entryBytes);
  for (let i = 0; i < payload.length; i += 1) payload[i] = (i * 31 + 7) & 0xff;

  const started = performance.now();
  const deadline = started + options.durationMs;
  const proposer = async (id: number): Promise<void> => {
    // Proposer i starts at group i and strides by the proposer count, so all groups get traffic.
    let turn = id;
    while (performance.now() < deadline) {
      const group = groups[turn % groups.length] as GroupId;
      turn += options.concurrency;
      const sent = performance.now();
      const outcome = await host.propose(group, payload, { timeoutMs: options.timeoutMs });
      if (outcome.ok) record((performance.now() - sent) * 1000);
      else {
        failures[outcome.code] = (failures[outcome.code] ?? 0) + 1;
        // Do not spin on a group that refuses (leadership moved, or overload): give others a turn.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, id) => proposer(id)));
  return {
    ok,
    failures,
    elapsedMs: performance.now() - started,
    latenciesUs: samples.slice(0, ok),
  };
};
