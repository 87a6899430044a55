#!/usr/bin/env node
// The `fastpaca` binary (package.json "bin"; `npm start` runs `serve`). The only module that
// touches the real process: argv, environment, stdout/stderr, signals and the exit code.
import { pino } from 'pino';
import { hideBin } from 'yargs/helpers';
import type { Config } from '../config/config.js';
import { createLogger } from '../telemetry/logger.js';
import { startNode } from '../node/node.js';
import { runCli, type CliIo } from './cli.js';
import { exitCodes } from './exit-codes.js';
import { serve, type ProcessLog, type ServeDeps } from './serve.js';
import { packageVersion } from './version.js';

const createProcessLog = (config: Config): ProcessLog => {
  const destination = pino.destination({ dest: 1, sync: false });
  const logger = createLogger({ level: config.logLevel, destination });
  return {
    logger,
    flush: () => new Promise<void>((resolve) => logger.flush(() => resolve())),
    flushSync: () => {
      try {
        destination.flushSync();
      } catch {
        // Nothing buffered, or a write in progress: exiting now matters more than the last line.
      }
    },
  };
};

const io: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  stdoutIsTty: process.stdout.isTTY === true,
};

const serveDeps: ServeDeps = {
  startNode: (config, logger) => startNode(config, logger),
  createLog: createProcessLog,
  signals: process,
  exit: (code) => process.exit(code),
  now: () => performance.now(),
  stderr: (line) => void process.stderr.write(`${line}\n`),
};

/** Exit once stdout has taken everything written so far (pipes may be asynchronous). */
const exitAfterStdout = (code: number): void => {
  process.stdout.write('', () => process.exit(code));
};

runCli(hideBin(process.argv), io, { serve: (loaded) => serve(loaded, serveDeps) }, packageVersion()).then(
  exitAfterStdout,
  (error: unknown) => {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`fastpaca: unexpected error: ${detail}\n`);
    exitAfterStdout(exitCodes.failure);
  },
);
