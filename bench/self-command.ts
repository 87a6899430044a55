// How a benchmark starts another fastpaca process: the same program that is running now. Built as
// the self-contained binary (Node's single executable application), that program is the binary
// itself; as a bundle run by node, it is the bundle; from the compiled tree, dist/src/cli/main.js.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const isSingleExecutable = (): boolean => {
  try {
    const sea = createRequire(import.meta.url)('node:sea') as { isSea?: () => boolean };
    return sea.isSea?.() ?? false;
  } catch {
    return false;
  }
};

/** Set by the release bundle's banner (scripts/build-dist.mjs): the bundle is the CLI itself. */
declare const FASTPACA_BUNDLE: boolean | undefined;

/** The program and leading arguments that run the fastpaca CLI. */
export const fastpacaCommand = (): string[] => {
  if (isSingleExecutable()) return [process.execPath];
  if (typeof FASTPACA_BUNDLE !== 'undefined' && FASTPACA_BUNDLE && process.argv[1] !== undefined) {
    return [process.execPath, process.argv[1]];
  }
  return [process.execPath, fileURLToPath(new URL('../src/cli/main.js', import.meta.url))];
};
