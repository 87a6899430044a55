// `fastpaca serve`: start one node with a loaded configuration, log where it listens, and on
// SIGTERM/SIGINT close it gracefully within shutdown_timeout_ms. A second signal exits at once.
// Resolves with the process exit code once the node is stopped (or failed to start); everything
// process-wide (signals, exit, the logger) comes in through ServeDeps so tests can drive it.
import type { Config } from '../config/config.js';
import { isConfigError } from '../config/config-error.js';
import type { LoadedConfig } from '../config/load-config.js';
import { redactConfig } from '../config/redact-config.js';
import type { Logger } from '../telemetry/logger.js';
import { configOrigins } from './config-view.js';
import { exitCodes, signalExitCode } from './exit-codes.js';

/** What serve needs of a started node (src/node/node.ts RunningNode satisfies it). */
export interface ServedNode {
  readonly nodeId: string;
  readonly httpPort: number;
  readonly raftPort: number;
  close(): Promise<void>;
}

/** The process logger with the means to get its buffered lines out before the process exits. */
export interface ProcessLog {
  readonly logger: Logger;
  /** Writes buffered lines; used before a normal exit. */
  flush(): Promise<void>;
  /** Best effort, synchronous: used right before an immediate exit. */
  flushSync(): void;
}

export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface ServeDeps {
  readonly startNode: (config: Config, logger: Logger) => Promise<ServedNode>;
  readonly createLog: (config: Config) => ProcessLog;
  readonly signals: SignalSource;
  /** Ends the process now (a second signal); never returns in production. */
  readonly exit: (code: number) => void;
  /** Milliseconds clock for telling a deliberate second signal from a duplicate of the first. */
  readonly now: () => number;
  /** One human-readable line for the operator's terminal (logs are JSON on stdout). */
  readonly stderr: (line: string) => void;
}

const shutdownSignals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Ctrl-C under `npm start` delivers SIGINT twice at once: the terminal signals the whole process
 * group and npm forwards its own copy. Signals this soon after the first are that duplicate, not
 * an operator insisting, and must not turn a graceful shutdown into an immediate exit.
 */
export const duplicateSignalWindowMs = 1000;

export const serve = async (loaded: LoadedConfig, deps: ServeDeps): Promise<number> => {
  const { config } = loaded;
  const log = deps.createLog(config);
  const { logger } = log;
  for (const warning of loaded.warnings) logger.warn({ type: 'config_warning' }, warning);

  const stop = stopSignal(deps, log);
  try {
    let node: ServedNode;
    try {
      node = await deps.startNode(config, logger);
    } catch (error) {
      return await startFailed(error, deps, log);
    }
    logger.info(
      {
        type: 'fastpaca_serving',
        nodeId: node.nodeId,
        httpPort: node.httpPort,
        raftPort: node.raftPort,
        config: redactConfig(config),
        configuredBy: configOrigins(loaded, { includeDefaults: false }),
      },
      `fastpaca serving HTTP on ${config.host}:${node.httpPort} (raft ${node.raftPort}, data ${config.dataDir})`,
    );
    const signal = await stop.requested;
    logger.info({ type: 'shutdown_started', signal }, `${signal} received: shutting down gracefully`);
    const code = await closeWithin(node, config.shutdownTimeoutMs, logger);
    await log.flush();
    return code;
  } finally {
    stop.dispose();
  }
};

/** The first shutdown signal resolves `requested`; a second one exits immediately. */
const stopSignal = (
  deps: ServeDeps,
  log: ProcessLog,
): { readonly requested: Promise<NodeJS.Signals>; dispose(): void } => {
  let receivedAt: number | undefined;
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const requested = new Promise<NodeJS.Signals>((done) => (resolve = done));
  const listener = (signal: NodeJS.Signals): void => {
    if (receivedAt !== undefined) {
      if (deps.now() - receivedAt < duplicateSignalWindowMs) return;
      log.logger.warn({ type: 'shutdown_forced', signal }, `second signal (${signal}): exiting immediately`);
      log.flushSync();
      deps.exit(signalExitCode(signal));
      return;
    }
    receivedAt = deps.now();
    resolve(signal);
  };
  for (const signal of shutdownSignals) deps.signals.on(signal, listener);
  return {
    requested,
    dispose: () => {
      for (const signal of shutdownSignals) deps.signals.off(signal, listener);
    },
  };
};

const startFailed = async (error: unknown, deps: ServeDeps, log: ProcessLog): Promise<number> => {
  const message = error instanceof Error ? error.message : String(error);
  // A configuration problem found while starting (the data directory belongs to another node, a
  // seed this release cannot use) is the operator's to fix, like any other invalid option.
  const code = isConfigError(error) ? exitCodes.usage : exitCodes.failure;
  log.logger.fatal({ type: 'start_failed', err: error }, `fastpaca failed to start: ${message}`);
  await log.flush();
  deps.stderr(`fastpaca: failed to start: ${message}`);
  return code;
};

const closeWithin = async (node: ServedNode, timeoutMs: number, logger: Logger): Promise<number> => {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([node.close().then(() => 'closed' as const), timedOut]);
    if (outcome === 'timeout') {
      logger.error(
        { type: 'shutdown_timeout', timeoutMs },
        `graceful shutdown took longer than ${timeoutMs} ms; exiting anyway`,
      );
      return exitCodes.failure;
    }
    logger.info({ type: 'shutdown_complete' }, 'graceful shutdown complete');
    return exitCodes.ok;
  } catch (error) {
    logger.error({ type: 'shutdown_failed', err: error }, 'graceful shutdown failed');
    return exitCodes.failure;
  } finally {
    clearTimeout(timer);
  }
};
