// Runs the fastpaca CLI in this process with the given arguments and exits with its code: what the
// old benchmark entry points (bench/main.ts, bench/cluster-bench.ts) now are.
import { runCli } from '../src/cli/cli.js';
import { packageVersion } from '../src/cli/version.js';

export const runCliAlias = (args: readonly string[]): void => {
  const serve = (): Promise<number> =>
    Promise.reject(new Error('serve is not available through a bench alias'));
  runCli(
    args,
    {
      stdout: (text) => void process.stdout.write(text),
      stderr: (text) => void process.stderr.write(text),
      env: process.env,
      cwd: process.cwd(),
      stdoutIsTty: process.stdout.isTTY === true,
    },
    { serve },
    packageVersion(),
  ).then(
    (code) => process.stdout.write('', () => process.exit(code)),
    (error: unknown) => {
      process.stderr.write(`fastpaca bench: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
};
