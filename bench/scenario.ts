// What a benchmark scenario is, and what every scenario receives: the targets (given URLs or nodes
// started here), the common options, the output, and a recorder for its latencies. A scenario
// returns its summary numbers; the runner (run-bench.ts) prints the table, the JSON line and the SVG.
import type { LocalNode } from './local-nodes.js';
import type { BenchOutput } from './progress.js';
import type { LatencyRecorder } from './recorder.js';

/** One scenario-specific flag (the common ones are in bench-options.ts). */
export interface ScenarioOption {
  readonly type: 'number' | 'boolean' | 'string';
  readonly default?: number | boolean | string;
  readonly describe: string;
  /** Repeatable (the value is a list). */
  readonly array?: boolean;
}

export interface CommonOptions {
  readonly urls: readonly string[];
  readonly spawn: 0 | 1 | 3;
  readonly connections: number;
  readonly durationS: number;
  readonly count: number | undefined;
  readonly rate: number | undefined;
  readonly messageBytes: number;
  readonly apiKey: string | undefined;
  readonly warmupS: number;
}

export interface BenchContext {
  readonly options: CommonOptions;
  /** The scenario's own flags, by name. */
  readonly flags: Readonly<Record<string, unknown>>;
  /** Where the load goes: the given URLs, or the nodes started here. */
  readonly targets: readonly string[];
  /** The nodes started here (empty with --url). */
  readonly nodes: readonly LocalNode[];
  readonly output: BenchOutput;
  readonly recorder: LatencyRecorder;
  /** Request headers (content type, and the API key when given). */
  readonly headers: Readonly<Record<string, string>>;
  /** A line for the log (not part of the final table). */
  log(line: string): void;
  /** Reports progress every second while `work` runs. */
  withProgress<T>(label: string, work: () => Promise<T>): Promise<T>;
}

/** A scenario's numbers for the table and the JSON line (flat: name → value). */
export type ScenarioResult = Readonly<Record<string, number | string | boolean | null>>;

export interface Scenario {
  readonly name: string;
  readonly describe: string;
  /** Longer help text (what it measures, how). */
  readonly help: string;
  /** Nodes to start when no --url is given; `required` refuses --url and other counts. */
  readonly spawn: {
    readonly default: 1 | 3;
    readonly required?: boolean;
    /** It starts its own nodes (the runner starts none and refuses --url). */
    readonly ownNodes?: boolean;
  };
  readonly options?: Readonly<Record<string, ScenarioOption>>;
  /** Its own defaults for common options the user did not give (e.g. a low rate). */
  readonly defaults?: { readonly connections?: number; readonly rate?: number; readonly durationS?: number };
  readonly run: (context: BenchContext) => Promise<ScenarioResult>;
}

export const numberFlag = (context: BenchContext, name: string): number => {
  const value = context.flags[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`--${name} must be a number`);
  return value;
};

export const booleanFlag = (context: BenchContext, name: string): boolean => context.flags[name] === true;
