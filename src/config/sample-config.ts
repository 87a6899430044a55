// Renders config.sample.toml from the option table, so the sample documents every option with its
// default, environment variable and flag, and cannot fall behind the code (a test compares the
// committed file with this output; regenerate with `fastpaca config sample > config.sample.toml`).
import { optionKeys, options, type OptionKey, type OptionSpec } from './options.js';

const header = [
  '# fastpaca configuration. Every option is shown with its default; uncomment or edit what you need.',
  '# Load it with `fastpaca serve --config fastpaca.toml` (or FASTPACA_CONFIG=fastpaca.toml).',
  '# Precedence: command-line flag > environment variable > this file > default.',
  '# Environment variables and flags take comma-separated strings where this file takes arrays.',
  '# Generated from src/config/options.ts by `fastpaca config sample`.',
];

export const renderSampleConfig = (): string => {
  const lines = [...header];
  for (const [section, keys] of groupBySection()) {
    lines.push('');
    if (section !== '') lines.push(`[${section}]`, '');
    keys.forEach((key, index) => {
      if (index > 0) lines.push('');
      lines.push(...renderOption(key));
    });
  }
  return `${lines.join('\n')}\n`;
};

/** TOML requires top-level keys before any [table]; sections keep the order they first appear in. */
const groupBySection = (): Map<string, OptionKey[]> => {
  const sections = new Map<string, OptionKey[]>([['', []]]);
  for (const key of optionKeys) {
    const section = sectionOf(options[key].toml);
    const keys = sections.get(section) ?? [];
    keys.push(key);
    sections.set(section, keys);
  }
  return sections;
};

const sectionOf = (tomlPath: string): string => {
  const dot = tomlPath.lastIndexOf('.');
  return dot < 0 ? '' : tomlPath.slice(0, dot);
};

const leafOf = (tomlPath: string): string => tomlPath.slice(tomlPath.lastIndexOf('.') + 1);

const renderOption = (key: OptionKey): string[] => {
  const option: OptionSpec = options[key];
  const leaf = leafOf(option.toml);
  const lines = [
    `# ${option.doc}`,
    `# env ${option.env}, flag --${option.flag}, default ${describeDefault(option)}`,
  ];
  if ('default' in option) {
    lines.push(`${leaf} = ${tomlValue(option.default)}`);
    if (option.example !== undefined) lines.push(`# ${leaf} = ${tomlValue(option.example)}`);
  } else {
    lines.push(`# ${leaf} = ${tomlValue(option.example)}`);
  }
  return lines;
};

/** The default as documentation shows it: a constant, "empty", "unset" or how it is derived. */
export const describeDefault = (option: OptionSpec): string => {
  if (option.derivedDefault !== undefined) return option.derivedDefault;
  if (!('default' in option)) return 'unset';
  return Array.isArray(option.default) && option.default.length === 0 ? 'empty' : tomlValue(option.default);
};

/** The TOML spelling of the values options use: strings, integers, booleans and arrays of those. */
export const tomlValue = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new Error(`no TOML spelling for ${JSON.stringify(value)}`);
};
