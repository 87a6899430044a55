// `fastpaca bench <scenario>`: the benchmarks (bench/) behind the CLI. One subcommand per scenario
// of bench/scenarios/registry.ts, each with the common options (targets, connections, duration or
// count, rate, message size, API key, plot path) and its own, and its own --help.
import { resolve } from 'node:path';
import type { Argv, Options as YargsOption } from 'yargs';
import { runBench } from '../../bench/run-bench.js';
import type { CommonOptions, Scenario } from '../../bench/scenario.js';
import { scenarios } from '../../bench/scenarios/registry.js';
import { exitCodes } from './exit-codes.js';

export interface BenchCommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly cwd: string;
  readonly stdoutIsTty?: boolean;
}

const defaults = { connections: 32, durationS: 10, messageBytes: 300, warmupS: 2 };

const commonOptions = (scenario: Scenario): Record<string, YargsOption> => {
  const own = scenario.defaults ?? {};
  return {
    url: {
      type: 'string',
      array: true,
      requiresArg: true,
      describe: 'Target node(s) (http://host:port, repeatable); nothing else is ever contacted',
    },
    spawn: {
      type: 'number',
      choices: [1, 3],
      describe: `Start this many local nodes on 127.0.0.1 in a temporary directory (default ${scenario.spawn.default} without --url)`,
    },
    connections: {
      type: 'number',
      describe: `Concurrent connections (default ${own.connections ?? defaults.connections})`,
    },
    duration: {
      type: 'number',
      describe: `Seconds of measured load (default ${own.durationS ?? defaults.durationS})`,
    },
    count: {
      type: 'number',
      describe: 'Stop after this many requests (or the duration, whichever comes first)',
    },
    rate: {
      type: 'number',
      describe: `Requests/s over all connections, open loop (default ${own.rate === undefined ? 'unlimited, closed loop' : own.rate})`,
    },
    'message-bytes': {
      type: 'number',
      default: defaults.messageBytes,
      describe: 'Text bytes per appended message',
    },
    warmup: {
      type: 'number',
      default: defaults.warmupS,
      describe: 'Uncounted warm-up seconds (scenarios that warm up)',
    },
    'api-key': {
      type: 'string',
      requiresArg: true,
      describe: 'Bearer key for the target (also given to nodes started here)',
    },
    svg: {
      type: 'string',
      requiresArg: true,
      describe: `Plot file (default ./fastpaca-bench-${scenario.name}.svg)`,
    },
  };
};

const positive = (
  value: unknown,
  name: string,
  { integer = false, max = Number.MAX_SAFE_INTEGER } = {},
): number | undefined => {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value <= 0 ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new Error(
      `--${name} must be a positive ${integer ? 'integer' : 'number'}${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}`,
    );
  }
  return value;
};

/** The common options from parsed flags, with the scenario's and then the global defaults. */
export const benchOptions = (scenario: Scenario, argv: Readonly<Record<string, unknown>>): CommonOptions => {
  const own = scenario.defaults ?? {};
  const urls = Array.isArray(argv['url']) ? argv['url'].map(String) : [];
  const spawn = argv['spawn'] === undefined ? 0 : (argv['spawn'] as 1 | 3);
  const warmup = argv['warmup'];
  if (typeof warmup !== 'number' || !(warmup >= 0) || warmup > 3600)
    throw new Error('--warmup must be 0..3600 seconds');
  const apiKey = argv['api-key'];
  return {
    urls,
    spawn,
    connections:
      positive(argv['connections'], 'connections', { integer: true, max: 10_000 }) ??
      own.connections ??
      defaults.connections,
    durationS: positive(argv['duration'], 'duration', { max: 86_400 }) ?? own.durationS ?? defaults.durationS,
    count: positive(argv['count'], 'count', { integer: true }),
    rate: positive(argv['rate'], 'rate') ?? own.rate,
    messageBytes:
      positive(argv['message-bytes'], 'message-bytes', { integer: true, max: 16 * 1024 * 1024 }) ??
      defaults.messageBytes,
    apiKey: typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined,
    warmupS: warmup,
  };
};

const scenarioFlags = (
  scenario: Scenario,
  argv: Readonly<Record<string, unknown>>,
): Record<string, unknown> => {
  const flags: Record<string, unknown> = {};
  for (const name of Object.keys(scenario.options ?? {})) flags[name] = argv[name];
  return flags;
};

/** Registers `bench <scenario>`; `setWork` receives the command's work, as runCli expects. */
export const benchCommand = <T>(
  command: Argv<T>,
  io: BenchCommandIo,
  setWork: (work: () => Promise<number>) => void,
): Argv<T> => {
  let withScenarios = command.usage(
    '$0 bench <scenario> [options]\n\nLoad a node or a local cluster and report throughput, latency and a plot.',
  );
  for (const scenario of scenarios) {
    withScenarios = withScenarios.command(
      scenario.name,
      scenario.describe,
      (sub) => {
        let options = sub.usage(
          `$0 bench ${scenario.name} [options]\n\n${scenario.describe}.\n${scenario.help}`,
        );
        for (const [name, option] of Object.entries(commonOptions(scenario)))
          options = options.option(name, { ...option, group: 'Common options:' });
        for (const [name, option] of Object.entries(scenario.options ?? {})) {
          options = options.option(name, {
            type: option.type,
            describe: option.describe,
            group: `${scenario.name} options:`,
            ...(option.default === undefined ? {} : { default: option.default }),
            ...(option.array === true ? { array: true } : {}),
          });
        }
        return options.epilog(
          'Output: a progress line (one line per second when not a terminal), a table, the plot file and, last, one JSON line.\n' +
            'Exit codes: 0 done; 1 the benchmark failed; 2 invalid command line.',
        );
      },
      (argv) => {
        const record = argv as Readonly<Record<string, unknown>>;
        setWork(async () => {
          try {
            const options = benchOptions(scenario, record);
            const svg =
              typeof record['svg'] === 'string' ? record['svg'] : `fastpaca-bench-${scenario.name}.svg`;
            await runBench({
              scenario,
              options,
              flags: scenarioFlags(scenario, record),
              svgPath: resolve(io.cwd, svg),
              output: { write: io.stdout, tty: io.stdoutIsTty === true },
            });
            return exitCodes.ok;
          } catch (error) {
            io.stderr(
              `fastpaca bench ${scenario.name}: ${error instanceof Error ? error.message : String(error)}\n`,
            );
            return exitCodes.failure;
          }
        });
      },
    );
  }
  return withScenarios.demandCommand(1, `Give a scenario: ${scenarios.map((each) => each.name).join(', ')}.`);
};
