// Latencies of one benchmark run: an HDR histogram per operation kind and overall (node's built-in
// perf_hooks histogram), plus one window per progress interval (1 s), each closed by cut(), so the
// report can plot percentiles over time as well as the whole run's distribution.
import type { RecordableHistogram } from 'node:perf_hooks';
import { newLatencyHistogram, round } from './stats.js';

export interface IntervalStats {
  /** Seconds from the start of the run to the end of this interval. */
  readonly t_s: number;
  readonly ops: number;
  readonly errors: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
}

export interface KindSummary {
  readonly ops: number;
  readonly errors: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly p999_ms: number;
  readonly max_ms: number;
}

const ms = (histogram: RecordableHistogram, percentile: number): number =>
  histogram.count === 0 ? 0 : round(histogram.percentile(percentile) / 1e6, 3);

// Histogram plot buckets: eight per power of ten, from 1 µs up to 100 s.
const bucketsPerDecade = 8;
const lowestNs = 1_000;
const bucketCount = 8 * bucketsPerDecade + 1;
const bucketOf = (latencyNs: number): number =>
  Math.min(bucketCount - 1, Math.max(0, Math.ceil(Math.log10(latencyNs / lowestNs) * bucketsPerDecade)));
const bucketUpperMs = (index: number): number => (lowestNs * 10 ** (index / bucketsPerDecade)) / 1e6;

export class LatencyRecorder {
  readonly overall: RecordableHistogram = newLatencyHistogram();
  readonly intervals: IntervalStats[] = [];
  private readonly kinds = new Map<string, { histogram: RecordableHistogram; errors: number }>();
  private window: RecordableHistogram = newLatencyHistogram();
  private windowErrors = 0;
  private startedMs = performance.now();
  /** Counts per log-spaced latency bucket (bucketOf), for the distribution plot. */
  private readonly bucketCounts: number[] = new Array<number>(bucketCount).fill(0);
  ok = 0;
  errors = 0;

  /** Restarts the clock (after set-up), dropping nothing recorded so far. */
  start(): void {
    this.startedMs = performance.now();
  }

  /** One successful operation that took `latencyNs`. */
  record(kind: string, latencyNs: number): void {
    // The histograms' range ends at 60 s (stats.ts): a longer latency is counted as 60 s, not dropped.
    const value = Math.min(60e9, Math.max(1, Math.round(latencyNs)));
    this.overall.record(value);
    this.window.record(value);
    this.kind(kind).histogram.record(value);
    this.bucketCounts[bucketOf(value)]!++;
    this.ok++;
  }

  /** One failed operation (a non-success status, a refused or dropped connection). */
  error(kind: string): void {
    this.kind(kind).errors++;
    this.errors++;
    this.windowErrors++;
  }

  /** Closes the current interval and returns it. */
  cut(): IntervalStats {
    const now = performance.now();
    const stats: IntervalStats = {
      t_s: round((now - this.startedMs) / 1000, 2),
      ops: this.window.count,
      errors: this.windowErrors,
      p50_ms: ms(this.window, 50),
      p90_ms: ms(this.window, 90),
      p99_ms: ms(this.window, 99),
      max_ms: this.window.count === 0 ? 0 : round(this.window.max / 1e6, 3),
    };
    this.intervals.push(stats);
    this.window = newLatencyHistogram();
    this.windowErrors = 0;
    return stats;
  }

  elapsedS(): number {
    return (performance.now() - this.startedMs) / 1000;
  }

  /** Per operation kind, and "all". */
  summary(): Record<string, KindSummary> {
    const result: Record<string, KindSummary> = {};
    const describe = (histogram: RecordableHistogram, errors: number): KindSummary => ({
      ops: histogram.count,
      errors,
      p50_ms: ms(histogram, 50),
      p90_ms: ms(histogram, 90),
      p99_ms: ms(histogram, 99),
      p999_ms: ms(histogram, 99.9),
      max_ms: histogram.count === 0 ? 0 : round(histogram.max / 1e6, 3),
    });
    for (const [kind, { histogram, errors }] of this.kinds) result[kind] = describe(histogram, errors);
    if (this.kinds.size !== 1) result['all'] = describe(this.overall, this.errors);
    return result;
  }

  /** The whole run's latency distribution for the histogram plot: [upper bound ms, count], trimmed. */
  buckets(): [number, number][] {
    const used = this.bucketCounts
      .map((count, index) => [index, count] as const)
      .filter(([, count]) => count > 0);
    if (used.length === 0) return [];
    const first = used[0]![0];
    const last = used[used.length - 1]![0];
    const result: [number, number][] = [];
    for (let index = first; index <= last; index++)
      result.push([round(bucketUpperMs(index), 4), this.bucketCounts[index]!]);
    return result;
  }

  private kind(kind: string): { histogram: RecordableHistogram; errors: number } {
    let entry = this.kinds.get(kind);
    if (entry === undefined) {
      entry = { histogram: newLatencyHistogram(), errors: 0 };
      this.kinds.set(kind, entry);
    }
    return entry;
  }
}
