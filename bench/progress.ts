// Progress while a benchmark runs: every interval the recorder's window is cut and described, on a
// terminal as one line rewritten in place, otherwise as one plain line per interval (logs, CI).
import type { IntervalStats, LatencyRecorder } from './recorder.js';

export interface BenchOutput {
  /** Writes text as is (lines end with \n). */
  readonly write: (text: string) => void;
  /** Whether the output is a terminal (then progress rewrites one line). */
  readonly tty: boolean;
}

export const describeInterval = (label: string, stats: IntervalStats, elapsedS: number): string =>
  `${label} ${elapsedS.toFixed(0)}s: ${stats.ops} ok, ${stats.errors} errors, ` +
  `p50 ${stats.p50_ms} ms, p99 ${stats.p99_ms} ms, max ${stats.max_ms} ms`;

/** Starts reporting; the returned function stops it (and ends the terminal line). */
export const startProgress = (
  recorder: LatencyRecorder,
  output: BenchOutput,
  label: string,
  intervalMs = 1_000,
): (() => void) => {
  let wroteLine = false;
  const timer = setInterval(() => {
    const stats = recorder.cut();
    const line = describeInterval(label, stats, recorder.elapsedS());
    if (output.tty) {
      output.write(`\r\x1b[2K${line}`);
      wroteLine = true;
    } else {
      output.write(`${line}\n`);
    }
  }, intervalMs);
  return () => {
    clearInterval(timer);
    // The last partial interval still belongs on the plot.
    recorder.cut();
    if (wroteLine) output.write('\n');
  };
};
