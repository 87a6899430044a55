// Builds the Config from its sources with precedence flag > env > TOML file > default, validating
// every option against its schema (TypeBox + ajv) as it goes. The first invalid option throws a
// ConfigError naming the option, the source its value came from and what was expected.
import { resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigSchema, type Config } from './config.js';
import { ConfigError, type ConfigSourceKind } from './config-error.js';
import { deriveDefaults, type DerivedInputs } from './derive-defaults.js';
import { optionKeys, options, type OptionKey, type OptionSpec } from './options.js';
import { readTomlConfig, type TomlValues } from './toml-file.js';
import { checkCrossOptionRules } from './cross-option-rules.js';
import { faultEnvVars } from '../node/fault-injection.js';

export interface ConfigInputs {
  /** CLI flags keyed by flag name (kebab-case, as in options.ts), e.g. yargs' parsed argv. */
  readonly flags?: Readonly<Record<string, unknown>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Relative data_dir paths resolve against this; defaults to process.cwd(). */
  readonly cwd?: string;
}

/** Where one option's value came from; `name` and `raw` are what an error message shows. */
export interface ResolvedSource {
  readonly kind: ConfigSourceKind;
  /** "--port", "PORT", "port" (TOML key) or the config key for defaults. */
  readonly name: string;
  readonly raw: unknown;
  /** For file values: the file path; for derived defaults: how the value was derived. */
  readonly detail?: string;
}

export interface LoadedConfig {
  readonly config: Config;
  /** The source of every option that has a value. */
  readonly sources: ReadonlyMap<OptionKey, ResolvedSource>;
  /** Non-fatal findings worth a log line (unknown FASTPACA_* variables). */
  readonly warnings: readonly string[];
}

export const configFileFlag = 'config';
export const configFileEnv = 'FASTPACA_CONFIG';

const ajv = new Ajv({ allErrors: false });
const validators = new Map<OptionKey, ValidateFunction>(
  optionKeys.map((key) => [key, ajv.compile(options[key].kind.schema)]),
);
const validateConfig = ajv.compile(ConfigSchema);

export const knownTomlKeys: ReadonlySet<string> = new Set(optionKeys.map((key) => options[key].toml));
const knownEnvVars: ReadonlySet<string> = new Set([
  ...optionKeys.map((key) => options[key].env),
  configFileEnv,
  ...faultEnvVars,
]);

export const loadConfig = (inputs: ConfigInputs = {}): LoadedConfig => {
  const flags = inputs.flags ?? {};
  const env = inputs.env ?? {};
  const file = readConfigFile(flags, env);
  const values: Record<string, unknown> = {};
  const sources = new Map<OptionKey, ResolvedSource>();
  for (const key of optionKeys) {
    const source = pickSource(key, flags, env, file);
    if (source === undefined) continue;
    values[key] = resolveValue(key, source, {
      port: typeof values['port'] === 'number' ? values['port'] : 4000,
    });
    sources.set(key, source);
  }
  for (const [key, derived] of deriveDefaults(derivedInputs(values))) {
    if (sources.has(key)) continue;
    const source: ResolvedSource = { kind: 'default', name: key, raw: derived.value, detail: derived.how };
    values[key] = resolveValue(key, source, { port: 4000 });
    sources.set(key, source);
  }
  values['dataDir'] = resolve(inputs.cwd ?? process.cwd(), String(values['dataDir']));
  return { config: finish(values, sources), sources, warnings: unknownEnvWarnings(env) };
};

// Read back from values that already passed their schemas, so these conversions never change them.
const derivedInputs = (values: Readonly<Record<string, unknown>>): DerivedInputs => ({
  port: Number(values['port']),
  clusterSeed: Array.isArray(values['clusterSeed']) ? values['clusterSeed'] : [],
  archiverEnabled: values['archiverEnabled'] === true,
  ratePerKey: Number(values['ratePerKey'] ?? 0),
});

const finish = (values: Record<string, unknown>, sources: ReadonlyMap<OptionKey, ResolvedSource>): Config => {
  if (!validateConfig(values)) {
    // Every option was validated on its own above; reaching here means options.ts and config.ts disagree.
    throw new Error(`config failed whole-object validation: ${ajv.errorsText(validateConfig.errors)}`);
  }
  const config = values as Config;
  checkCrossOptionRules(config, (key) => describeSource(key, sources.get(key)));
  return config;
};

const readConfigFile = (
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
): { readonly path: string; readonly values: TomlValues } | undefined => {
  const flagPath = flags[configFileFlag];
  const path = typeof flagPath === 'string' && flagPath !== '' ? flagPath : nonEmpty(env[configFileEnv]);
  return path === undefined ? undefined : { path, values: readTomlConfig(path, knownTomlKeys) };
};

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value;

const pickSource = (
  key: OptionKey,
  flags: Readonly<Record<string, unknown>>,
  env: Readonly<Record<string, string | undefined>>,
  file: { readonly path: string; readonly values: TomlValues } | undefined,
): ResolvedSource | undefined => {
  const option: OptionSpec = options[key];
  const flagValue = flags[option.flag];
  if (flagValue !== undefined)
    return { kind: 'flag', name: `--${option.flag}`, raw: flagRaw(key, flagValue) };
  // An empty variable counts as unset: compose files and k8s manifests often declare `FOO=`.
  const envValue = nonEmpty(env[option.env]);
  if (envValue !== undefined) return { kind: 'env', name: option.env, raw: envValue };
  if (file?.values.has(option.toml)) {
    return { kind: 'file', name: option.toml, raw: file.values.get(option.toml), detail: file.path };
  }
  if ('default' in option) return { kind: 'default', name: key, raw: option.default };
  return undefined;
};

/** yargs gives an array for a repeated flag: fine for lists, ambiguous for anything else. */
const flagRaw = (key: OptionKey, value: unknown): unknown => {
  if (!Array.isArray(value)) return typeof value === 'number' ? String(value) : value;
  if (options[key].kind.schema.type === 'array') return value.map(String).join(',');
  throw new ConfigError(`--${options[key].flag} (flag): is given more than once`, {
    option: key,
    source: 'flag',
  });
};

const resolveValue = (
  key: OptionKey,
  source: ResolvedSource,
  context: { readonly port: number },
): unknown => {
  const option: OptionSpec = options[key];
  const value = option.kind.coerce(source.raw, context);
  const validator = validators.get(key);
  const problem =
    validator !== undefined && !validator(value)
      ? `must be ${option.kind.expect}`
      : option.kind.check?.(value);
  if (problem !== undefined) {
    throw new ConfigError(`${describeSource(key, source)}: ${problem}`, { option: key, source: source.kind });
  }
  return value;
};

/** "PORT=abc (env)", "--port=abc (flag)", "port=\"abc\" (file x.toml)", secrets shown as <redacted>. */
export const describeSource = (key: OptionKey, source: ResolvedSource | undefined): string => {
  const option: OptionSpec = options[key];
  if (source === undefined) return `${option.env} (unset)`;
  const shown = option.secret === true ? '<redacted>' : showRaw(source);
  switch (source.kind) {
    case 'flag':
      return `${source.name}=${shown} (flag)`;
    case 'env':
      return `${source.name}=${shown} (env)`;
    case 'file':
      return `${source.name}=${shown} (file ${source.detail ?? ''})`;
    case 'default':
      return `${source.name}=${shown} (default${source.detail === undefined ? '' : `: ${source.detail}`})`;
  }
};

const showRaw = (source: ResolvedSource): string => {
  if (source.kind === 'flag' || source.kind === 'env') return String(source.raw);
  return JSON.stringify(source.raw) ?? String(source.raw);
};

const unknownEnvWarnings = (env: Readonly<Record<string, string | undefined>>): string[] =>
  Object.keys(env)
    .filter((name) => name.startsWith('FASTPACA_') && !knownEnvVars.has(name))
    .map((name) => `${name} is set but is not a fastpaca option (typo?); it is ignored`);
