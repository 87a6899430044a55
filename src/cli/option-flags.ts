// The yargs flags of `serve` and `config check`, generated from the option table so every option
// has a flag and --help documents it with its environment variable and default.
//
// Every flag is parsed as a string and handed to loadConfig, which coerces flags, environment
// variables and TOML values the same way; yargs' own number and boolean parsing would accept
// values ("1e3", "0x10") that the environment variable refuses.
import type { Argv, Options as YargsOption } from 'yargs';
import { configFileEnv, configFileFlag } from '../config/load-config.js';
import { optionKeys, options, type OptionSpec } from '../config/options.js';
import { describeDefault } from '../config/sample-config.js';

/** Help groups, by the option's TOML table ("" is the top level). */
const groupTitles: Readonly<Record<string, string>> = {
  '': 'Server options:',
  cluster: 'Cluster options:',
  tokens: 'Token counting options:',
  stream: 'Stream options:',
  context: 'Context options:',
  archiver: 'Archiver options:',
  raft: 'Raft options:',
  cache: 'Cache options:',
};

const groupOf = (option: OptionSpec): string => {
  const dot = option.toml.lastIndexOf('.');
  const table = dot < 0 ? '' : option.toml.slice(0, dot);
  return groupTitles[table] ?? 'Other options:';
};

const isBooleanOption = (option: OptionSpec): boolean => option.kind.schema.type === 'boolean';

const isListOption = (option: OptionSpec): boolean => option.kind.schema.type === 'array';

const describeFlag = (option: OptionSpec): string => {
  const value = isBooleanOption(option) ? ' (true|false; bare flag = true)' : '';
  const repeat = isListOption(option) ? ' (repeatable, or comma-separated)' : '';
  return `${option.doc}${value}${repeat} [env ${option.env}; default ${describeDefault(option)}]`;
};

const flagOption = (option: OptionSpec, documented: boolean): YargsOption => ({
  type: 'string',
  ...(documented ? { describe: describeFlag(option) } : {}),
  group: groupOf(option),
  // A bare boolean flag means true; any other flag without a value is an error yargs reports.
  requiresArg: !isBooleanOption(option),
});

/**
 * Adds --config and one flag per option to a command's parser. `documented: false` leaves out the
 * descriptions, which only --help shows: yargs renders the help of every command it runs before
 * the handler (in case the handler asks for it), and rendering every option's documentation is
 * about 0.15-0.3 s of a node's cold start. The flags parse the same either way.
 */
export const withConfigFlags = <T>(parser: Argv<T>, documented = true): Argv<T> => {
  let withFlags = parser.option(configFileFlag, {
    type: 'string',
    requiresArg: true,
    describe: `TOML config file (see config.sample.toml) [env ${configFileEnv}]`,
    group: groupTitles[''],
  });
  for (const key of optionKeys) {
    const option: OptionSpec = options[key];
    withFlags = withFlags.option(option.flag, flagOption(option, documented));
  }
  return withFlags;
};

/**
 * The flags as loadConfig takes them: kebab-case names, raw values, a bare boolean flag as "true".
 * Values pass through otherwise untouched (a repeated flag stays an array for loadConfig to judge).
 */
export const flagsFromArgv = (argv: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const flags: Record<string, unknown> = {};
  if (argv[configFileFlag] !== undefined) flags[configFileFlag] = argv[configFileFlag];
  for (const key of optionKeys) {
    const option: OptionSpec = options[key];
    const value = argv[option.flag];
    if (value === undefined) continue;
    flags[option.flag] = value === '' && isBooleanOption(option) ? 'true' : value;
  }
  return flags;
};
