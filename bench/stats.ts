// Small helpers every benchmark shares: latency histograms (node's built-in HDR histogram) and the
// median of several runs, so printed numbers are robust on a shared, noisy machine.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface RunResult {
  readonly ops_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
}

export const newLatencyHistogram = (): RecordableHistogram => createHistogram({ lowest: 1, highest: 60e9 });

/** Records one latency measured from `startNs` (process.hrtime.bigint()) to now. */
export const recordSince = (histogram: RecordableHistogram, startNs: bigint): void => {
  const elapsed = Number(process.hrtime.bigint() - startNs);
  histogram.record(Math.max(1, elapsed));
};

export const percentileMs = (histogram: RecordableHistogram, percentile: number): number =>
  round(histogram.count === 0 ? 0 : histogram.percentile(percentile) / 1e6);

export const median = (values: readonly number[]): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return round(value);
};

export const round = (value: number, digits = 2): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** The median of each field over several runs. */
export const medianOfRuns = (runs: readonly RunResult[]): RunResult => ({
  ops_per_s: median(runs.map((r) => r.ops_per_s)),
  p50_ms: median(runs.map((r) => r.p50_ms)),
  p99_ms: median(runs.map((r) => r.p99_ms)),
  errors: median(runs.map((r) => r.errors)),
});
