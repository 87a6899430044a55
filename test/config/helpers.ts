// Shared helpers for the config tests: temporary directories (removed after each test), TOML files
// written from dotted keys, and loadConfig's error captured for assertions.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import { tomlValue } from '../../src/config/sample-config.js';

/** Registers cleanup in the calling test file and returns a factory of fresh temp directories. */
export const useTempDirs = (): (() => string) => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'fastpaca-config-'));
    dirs.push(dir);
    return dir;
  };
};

/** Dotted keys are valid TOML at the top level: `raft.tick_ms = 100` defines [raft] tick_ms. */
export const tomlText = (values: Readonly<Record<string, unknown>>): string =>
  Object.entries(values)
    .map(([key, value]) => `${key} = ${tomlValue(value)}\n`)
    .join('');

export const writeToml = (dir: string, values: Readonly<Record<string, unknown>>, name = 'fastpaca.toml') => {
  const path = join(dir, name);
  writeFileSync(path, tomlText(values));
  return path;
};

/** The ConfigError `action` throws; fails the test when it throws nothing or something else. */
export const configErrorOf = (action: () => unknown): ConfigError => {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
};
