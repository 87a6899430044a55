// The package version for --version, read from package.json next to wherever this module runs
// (src/cli under vitest, dist/src/cli once built); the release bundle has it built in.
import { readFileSync } from 'node:fs';

/** Defined by the release bundle (scripts/build-dist.mjs), which has no package.json beside it. */
declare const FASTPACA_VERSION: string | undefined;

export const packageVersion = (): string => {
  if (typeof FASTPACA_VERSION === 'string') return FASTPACA_VERSION;
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8'));
      if (isFastpacaPackage(parsed)) return parsed.version;
    } catch {
      // Not at this depth: try the next one.
    }
  }
  return 'unknown';
};

const isFastpacaPackage = (value: unknown): value is { name: 'fastpaca'; version: string } =>
  typeof value === 'object' &&
  value !== null &&
  (value as Record<string, unknown>)['name'] === 'fastpaca' &&
  typeof (value as Record<string, unknown>)['version'] === 'string';
