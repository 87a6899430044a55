// The fastpaca command line: `serve`, `config sample`, `config check`, `cluster`, `snapshot`,
// `migrate`, `health`, `bench`. Parsing is strict (an unknown flag or argument is an error naming
// it) and every command has --help. Runs in-process and returns the exit code, so main.ts is the
// only place that touches the real process.
import yargs, { type Argv } from 'yargs';
import { isConfigError } from '../config/config-error.js';
import { configFileEnv, loadConfig, type LoadedConfig } from '../config/load-config.js';
import { renderSampleConfig } from '../config/sample-config.js';
import { migrateDatabase } from '../../archiver/migrate-command.js';
import { clusterCommand } from './cluster-command.js';
import { renderConfigCheck } from './config-view.js';
import { snapshotCommand } from './snapshot-command.js';
import { exitCodes } from './exit-codes.js';
import { healthOptions, healthWork } from './health-command.js';
import { flagsFromArgv, withConfigFlags as withAllConfigFlags } from './option-flags.js';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative data directories resolve against this. */
  readonly cwd: string;
  /** Whether stdout is a terminal (bench rewrites its progress line in place). */
  readonly stdoutIsTty?: boolean;
}

export interface CliCommands {
  /** Runs a node until it is stopped; resolves with the exit code. */
  readonly serve: (loaded: LoadedConfig) => Promise<number>;
}

const exitCodeHelp = [
  'Exit codes: 0 success or graceful shutdown; 1 failed to start, or shutdown failed or timed out;',
  '2 invalid command line or configuration; 130/143 a second SIGINT/SIGTERM during shutdown.',
].join('\n');

const precedenceHelp = [
  'Every option can also be set by its environment variable or in the TOML file given by --config',
  `(or ${configFileEnv}); precedence: flag > environment > file > default. See config.sample.toml.`,
].join('\n');

export const runCli = async (
  args: readonly string[],
  io: CliIo,
  commands: CliCommands,
  version: string,
): Promise<number> => {
  // A command handler leaves its (possibly long-running) work here; --help and errors leave none.
  let work: (() => Promise<number>) | undefined;
  // What a node's cold start need not pay for (README "Cold start"): the option documentation is
  // rendered only when help is asked for, and bench (its load generators, ws, every scenario) is
  // loaded only when it is the command; yargs builds only the command it runs.
  const helpWanted = args.includes('--help') || args.includes('-h');
  const withConfigFlags = <T>(command: Argv<T>): Argv<T> => withAllConfigFlags(command, helpWanted);
  const bench = args.includes('bench') ? await import('./bench-command.js') : undefined;
  const load = (argv: Readonly<Record<string, unknown>>): LoadedConfig | number => {
    try {
      return loadConfig({ flags: flagsFromArgv(argv), env: io.env, cwd: io.cwd });
    } catch (error) {
      if (!isConfigError(error)) throw error;
      io.stderr(`fastpaca: invalid configuration: ${error.message}\n`);
      return exitCodes.usage;
    }
  };
  const withLoaded =
    (then: (loaded: LoadedConfig) => Promise<number>) =>
    (argv: Readonly<Record<string, unknown>>): void => {
      work = async () => {
        const loaded = load(argv);
        return typeof loaded === 'number' ? loaded : then(loaded);
      };
    };

  const parser = yargs()
    .scriptName('fastpaca')
    .usage('$0 <command> [options]\n\nfastpaca: a Raft-replicated context and event log for LLM apps.')
    .parserConfiguration({ 'camel-case-expansion': false })
    .command(
      'serve',
      'Start a fastpaca node (REST/websocket API on --port, Raft on --raft-port)',
      (command) =>
        withConfigFlags(command)
          .usage('$0 serve [options]\n\nStart a fastpaca node; SIGTERM or SIGINT stops it gracefully.')
          .epilog(`${precedenceHelp}\n\n${exitCodeHelp}`),
      withLoaded(commands.serve),
    )
    .command('config', 'Print a sample config file, or check a configuration', (command) =>
      configCommands(command, withLoaded, withConfigFlags, io),
    )
    .command(
      'migrate',
      "Run the archive's Postgres schema migrations (DATABASE_URL) and exit; idempotent",
      (command) =>
        withConfigFlags(command)
          .usage(
            '$0 migrate [options]\n\nApply the missing archive migrations to DATABASE_URL (--database-url).',
          )
          .epilog(precedenceHelp),
      withLoaded(async ({ config }) => {
        if (config.databaseUrl === undefined) {
          io.stderr('fastpaca: migrate needs DATABASE_URL (or --database-url)\n');
          return exitCodes.usage;
        }
        const outcome = await migrateDatabase(config.databaseUrl);
        (outcome.ok ? io.stdout : io.stderr)(`${outcome.ok ? '' : 'fastpaca: '}${outcome.line}\n`);
        return outcome.ok ? exitCodes.ok : exitCodes.failure;
      }),
    )
    .command('cluster', "Inspect a running cluster (a node's status) or remove a node", (command) =>
      clusterCommand(command, io, (then) => (work = then)),
    )
    .command(
      'bench',
      'Benchmark a node or a local cluster: appends, read/write mix, cold start, durability, failover',
      (command) => (bench === undefined ? command : bench.benchCommand(command, io, (then) => (work = then))),
    )
    .command(
      'health',
      'Exit 0 if a node answers /health/live (or /health/ready) with 200: a container HEALTHCHECK',
      (command) => healthOptions(command),
      (argv) => {
        work = healthWork(argv, io);
      },
    )
    .command(
      'snapshot',
      'Back up a running node to a file, or restore one into a data directory',
      (command) => snapshotCommand(command, io, (then) => (work = then)),
    )
    .demandCommand(
      1,
      'Give a command: serve, config, cluster, snapshot, migrate, health or bench (see --help).',
    )
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(version)
    .epilog(exitCodeHelp)
    .wrap(110);

  let failure: string | undefined;
  let output = '';
  await parser.parseAsync([...args], {}, (error: Error | null | undefined, _argv: unknown, text: string) => {
    if (error) failure = error.message;
    output = text;
  });
  if (failure !== undefined) {
    io.stderr(`fastpaca: ${failure}\nRun "fastpaca --help" or "fastpaca <command> --help" for usage.\n`);
    return exitCodes.usage;
  }
  if (output !== '') io.stdout(output.endsWith('\n') ? output : `${output}\n`);
  return work === undefined ? exitCodes.ok : work();
};

const configCommands = <T>(
  command: Argv<T>,
  withLoaded: (
    then: (loaded: LoadedConfig) => Promise<number>,
  ) => (argv: Readonly<Record<string, unknown>>) => void,
  withConfigFlags: <U>(command: Argv<U>) => Argv<U>,
  io: CliIo,
): Argv<T> =>
  command
    .usage('$0 config <sample|check> [options]')
    .command(
      'sample',
      'Print a config file documenting every option with its default (the committed config.sample.toml)',
      (sub) => sub,
      () => {
        io.stdout(renderSampleConfig());
      },
    )
    .command(
      ['check', 'show'],
      'Resolve the configuration exactly as serve would and print it (secrets redacted) with the origin of each value; exits 2 if it is invalid',
      (sub) => withConfigFlags(sub).epilog(precedenceHelp),
      withLoaded(async (loaded) => {
        io.stdout(renderConfigCheck(loaded));
        for (const warning of loaded.warnings) io.stderr(`fastpaca: warning: ${warning}\n`);
        return exitCodes.ok;
      }),
    )
    .demandCommand(1, 'Give a config command: sample or check.');
