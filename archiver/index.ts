// The archiver's one door for the node assembly (src/node/node.ts): the database, the loop and the
// read-through reader, built from the node's configuration.

import type { Config } from '../src/config/config.js';
import type { ArchiveReader } from '../src/context/archive-reader.js';
import type { Consensus } from '../src/context/consensus.js';
import type { AppliedEvent } from '../src/context/events.js';
import type { ContextStateMachine } from '../src/context/state-machine.js';
import type { Logger } from '../src/telemetry/logger.js';
import type { Metrics } from '../src/telemetry/metrics.js';
import { ArchiveDatabase } from './archive-database.js';
import { createArchiveReader } from './archive-reader.js';
import { Archiver, type LeadershipView } from './archiver.js';

export { migrateDatabase } from './migrate-command.js';

export interface NodeArchive {
  /** For the service's read-through of trimmed history. */
  readonly reader: ArchiveReader;
  /** The state machine's onEvent (marks contexts with new work). */
  noteEvent(event: AppliedEvent): void;
  /** Starts the loop once the Raft host runs. */
  start(host: LeadershipView, consensus: Pick<Consensus, 'propose'>): void;
  /** The readiness reason while the database has never been usable since start-up. */
  readinessProblem(): string | undefined;
  /** Writes and acknowledges what is pending (bounded); for shutdown and tests. */
  flush(deadlineMs?: number): Promise<void>;
  /** One last bounded flush, then the pool closes. Call before the Raft loop stops. */
  close(): Promise<void>;
}

export interface NodeArchiveOptions {
  readonly config: Config;
  readonly nodeId: string;
  readonly stateMachine: ContextStateMachine;
  readonly metrics: Metrics;
  readonly log: Logger;
}

/**
 * The node's archive, or undefined without a DATABASE_URL. With a URL but the archiver disabled,
 * only the read-through works (history trimmed while it was enabled stays readable).
 */
export const createNodeArchive = (options: NodeArchiveOptions): NodeArchive | undefined => {
  const { config, nodeId, stateMachine, metrics, log } = options;
  if (config.databaseUrl === undefined) return undefined;
  const database = new ArchiveDatabase({
    url: config.databaseUrl,
    migrateOnBoot: config.migrateOnBoot,
    log,
  });
  const reader = createArchiveReader(database, log);
  let archiver: Archiver | undefined;
  return {
    reader,
    noteEvent: (event) => archiver?.noteEvent(event),
    start(host, consensus) {
      if (!config.archiverEnabled) return;
      archiver = new Archiver({
        nodeId,
        host,
        stateMachine,
        consensus,
        database,
        batchSize: config.archiverBatchSize,
        flushIntervalMs: config.archiveFlushIntervalMs,
        tailKeep: config.tailKeep,
        metrics,
        log,
      });
      archiver.start();
    },
    readinessProblem: () => (config.archiverEnabled ? database.readinessProblem() : undefined),
    flush: async (deadlineMs) => archiver?.flush(deadlineMs),
    async close() {
      await archiver?.close();
      await database.close();
    },
  };
};
