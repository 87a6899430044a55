// Reads the TOML config file (--config / FASTPACA_CONFIG) into a flat map of dotted keys to values,
// e.g. [archiver] batch_size = 10 → "archiver.batch_size" → 10. Syntax errors carry smol-toml's
// line and column; keys no option uses are rejected, so a typo never silently falls back to a default.
import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from './config-error.js';

export type TomlValues = ReadonlyMap<string, unknown>;

const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

const flatten = (table: Record<string, unknown>, prefix: string, into: Map<string, unknown>): void => {
  for (const [key, value] of Object.entries(table)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (isTable(value)) flatten(value, path, into);
    else into.set(path, value);
  }
};

export const parseTomlConfig = (text: string, path: string, knownKeys: ReadonlySet<string>): TomlValues => {
  let document: Record<string, unknown>;
  try {
    document = parse(text);
  } catch (error) {
    const detail =
      error instanceof TomlError
        ? `line ${error.line}, column ${error.column}: ${firstLine(error.message)}`
        : String(error);
    throw new ConfigError(`config file ${path}: invalid TOML at ${detail}`, { source: 'file', cause: error });
  }
  const values = new Map<string, unknown>();
  flatten(document, '', values);
  for (const key of values.keys()) {
    if (!knownKeys.has(key)) {
      throw new ConfigError(`${key} (file ${path}): is not a fastpaca option (see config.sample.toml)`, {
        source: 'file',
      });
    }
  }
  return values;
};

export const readTomlConfig = (path: string, knownKeys: ReadonlySet<string>): TomlValues => {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`config file ${path}: cannot be read (${reason})`, {
      source: 'file',
      cause: error,
    });
  }
  return parseTomlConfig(text, path, knownKeys);
};

const firstLine = (message: string): string => message.split('\n')[0] ?? message;
