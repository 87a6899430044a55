// The archiver: on each group this node leads, it writes committed messages with seq > archived_seq
// to Postgres in batches and then proposes `ack_archived` for the contiguous high-water mark, which
// moves archived_seq and trims the hot tail on every replica (src/context/apply-archive.ts).
//
// Like a Kafka sink connector with its offset in the replicated state: a new leader (after a
// failover, a crash mid-batch, a restart or a replica move) starts again from the replicated
// watermark, so a batch may be written twice but ON CONFLICT (context_id, seq) DO NOTHING makes the
// second write a no-op: at-least-once to Postgres, exactly-once in effect. Only messages read from
// this replica's applied (hence committed) state are written, in seq order from archived_seq + 1
// without a hole, and the ack never names a seq that was not written, so the archive has no gap.
//
// Postgres is never on the append path: the loop runs beside it on its own timer. An outage or a
// slow database only grows the lag (every attempt is bounded by a timeout, the pool is replaced
// after a failure, retries back off); archiving catches up, a full batch at a time, when it returns.
//
// Which contexts to look at: when this node gains a group's leadership it scans the group's window
// records for contexts with unarchived messages; after that, applied events of the groups it leads
// mark their contexts (a config change too: the contexts table follows it).

import type { GroupKv } from '../raft/index.js';
import type { Consensus } from '../src/context/consensus.js';
import type { AppliedEvent } from '../src/context/events.js';
import type { ContextStateMachine } from '../src/context/state-machine.js';
import type { Logger } from '../src/telemetry/logger.js';
import type { Metrics } from '../src/telemetry/metrics.js';
import type { ArchiveDatabase } from './archive-database.js';
import { writeBatches, type ContextBatch } from './archive-store.js';

/** What the archiver needs of the Raft host. */
export interface LeadershipView {
  groups(): readonly number[];
  leaderOf(group: number): string | null;
  groupKv(group: number): GroupKv;
}

export interface ArchiverOptions {
  readonly nodeId: string;
  readonly host: LeadershipView;
  readonly stateMachine: Pick<
    ContextStateMachine,
    'archiveBacklog' | 'archiveRows' | 'getContext' | 'tailBounds'
  >;
  /** Proposes on this node (a group it no longer leads answers NOT_LEADER). */
  readonly consensus: Pick<Consensus, 'propose'>;
  readonly database: ArchiveDatabase;
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  readonly tailKeep: number;
  readonly metrics: Pick<Metrics, 'archive' | 'bindGauges'>;
  readonly log: Logger;
  readonly clock?: () => Date;
  /** Longest one database write may take before it counts as failed (default 30 s). */
  readonly writeTimeoutMs?: number;
  /** First and longest wait between attempts while the database is failing (default 500 ms, 30 s). */
  readonly backoffMs?: { readonly first: number; readonly max: number };
}

interface Pending {
  readonly group: number;
  /** Bumped by every applied event of the context: what a flush read may be older than. */
  mark: number;
  /** Messages not yet archived, as last seen (for the pending-rows gauge). */
  lag: number;
}

class WriteTimeout extends Error {
  override readonly name = 'WriteTimeout';
}

export class Archiver {
  private readonly led = new Set<number>();
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private failures = 0;
  /** Messages applied since the last pass started: a full batch's worth starts the next pass early. */
  private rowsSinceFlush = 0;
  /** The timer waits out the flush interval (not a backoff after a failure). */
  private waitingInterval = false;
  private readonly clock: () => Date;

  constructor(private readonly options: ArchiverOptions) {
    this.clock = options.clock ?? (() => new Date());
    options.metrics.bindGauges({
      archivePendingRows: () => this.pendingRows(),
      archivePendingContexts: () => this.pending.size,
    });
  }

  /** The state machine's onEvent: marks contexts of groups this node leads. */
  noteEvent(event: AppliedEvent): void {
    if (!this.led.has(event.group)) return;
    if (event.event.type === 'message') {
      this.rowsSinceFlush += 1;
      // A full batch need not wait for the interval (the lag stays near one batch under load).
      if (this.rowsSinceFlush >= this.options.batchSize && this.waitingInterval) this.schedule(0);
    }
    const entry = this.pending.get(event.contextId);
    if (entry === undefined) {
      this.pending.set(event.contextId, {
        group: event.group,
        mark: 1,
        lag: event.event.type === 'message' ? 1 : 0,
      });
    } else {
      entry.mark += 1;
      if (event.event.type === 'message') entry.lag += 1;
    }
  }

  start(): void {
    this.schedule(0);
  }

  /** Rows known to be waiting (the fastpaca_archive_pending_rows gauge). */
  pendingRows(): number {
    let rows = 0;
    for (const entry of this.pending.values()) rows += entry.lag;
    return rows;
  }

  /**
   * Writes and acknowledges everything pending now, batch after batch (bounded by `deadlineMs`).
   * For shutdown and tests; resolves whether or not the database answered.
   */
  async flush(deadlineMs = 10_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (Date.now() < until) {
      const outcome = await this.runOnce();
      if (outcome !== 'more') return;
    }
  }

  /** Stops the timer after one last bounded flush (the node's close calls it before Raft stops). */
  async close(deadlineMs = 5_000): Promise<void> {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush(deadlineMs);
    this.closed = true;
  }

  private schedule(delayMs: number, interval = false): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.waitingInterval = interval;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.waitingInterval = false;
      void this.runOnce().then((outcome) => {
        if (outcome === 'more') this.schedule(0);
        else if (outcome === 'failed') this.schedule(this.backoffMs());
        else this.schedule(this.options.flushIntervalMs, true);
      });
    }, delayMs);
    this.timer.unref();
  }

  private backoffMs(): number {
    const { first, max } = this.options.backoffMs ?? { first: 500, max: 30_000 };
    return Math.min(max, first * 2 ** Math.min(16, this.failures - 1));
  }

  /** One attempt, never two at once. */
  private runOnce(): Promise<'idle' | 'more' | 'failed'> {
    const run = (this.running ?? Promise.resolve()).then(() => this.attempt());
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run.catch((error: unknown) => {
      this.options.log.error({ type: 'archiver', err: error }, 'archiver pass failed');
      return 'failed' as const;
    });
  }

  private async attempt(): Promise<'idle' | 'more' | 'failed'> {
    const { database } = this.options;
    this.rowsSinceFlush = 0;
    await this.refreshLeadership();
    if (!(await database.prepare())) {
      this.failures += 1;
      return 'failed';
    }
    if (this.pending.size === 0) return 'idle';
    const started = performance.now();
    const { batches, full, marks } = await this.collect();
    if (batches.length === 0) return 'idle';
    const rows = batches.reduce((sum, batch) => sum + batch.rows.length, 0);
    let inserted: number;
    try {
      inserted = await this.withTimeout(writeBatches(database.sql(), batches));
    } catch (error) {
      this.failures += 1;
      await database.failed(error);
      return 'failed';
    }
    this.failures = 0;
    database.succeeded();
    const { archive } = this.options.metrics;
    archive.attemptedTotal.inc(rows);
    archive.insertedTotal.inc(inserted);
    await this.acknowledge(batches, marks);
    archive.flushDurationMs.observe(performance.now() - started);
    return full ? 'more' : 'idle';
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    const timeoutMs = this.options.writeTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new WriteTimeout(`archive write took over ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  /** Tracks the groups this node leads; a newly led group's backlog is scanned from its store. */
  private async refreshLeadership(): Promise<void> {
    const { host, nodeId, stateMachine } = this.options;
    const now = new Set(host.groups().filter((group) => host.leaderOf(group) === nodeId));
    for (const group of this.led) if (!now.has(group)) this.led.delete(group);
    for (const [contextId, entry] of this.pending) if (!now.has(entry.group)) this.pending.delete(contextId);
    for (const group of now) {
      if (this.led.has(group)) continue;
      // Marked led first: events applied during the scan are caught by noteEvent.
      this.led.add(group);
      for (const { contextId, lastSeq, archivedSeq } of await stateMachine.archiveBacklog(
        group,
        host.groupKv(group),
      )) {
        if (!this.pending.has(contextId))
          this.pending.set(contextId, { group, mark: 0, lag: lastSeq - archivedSeq });
      }
    }
  }

  /** Up to batchSize rows, contiguous from each context's watermark, oldest pending contexts first. */
  private async collect(): Promise<{
    readonly batches: ContextBatch[];
    readonly full: boolean;
    readonly marks: Map<string, number>;
  }> {
    const { host, stateMachine, batchSize } = this.options;
    const batches: ContextBatch[] = [];
    const marks = new Map<string, number>();
    let room = batchSize;
    for (const [contextId, entry] of [...this.pending]) {
      if (room <= 0) break;
      const kv = host.groupKv(entry.group);
      const context = await stateMachine.getContext(entry.group, kv, contextId);
      if (context === undefined) {
        this.pending.delete(contextId);
        continue;
      }
      marks.set(contextId, entry.mark);
      entry.lag = context.last_seq - context.archived_seq;
      const from = context.archived_seq + 1;
      const to = Math.min(context.last_seq, context.archived_seq + room);
      const read = await stateMachine.archiveRows(entry.group, kv, contextId, from, to);
      // Only the contiguous run from the watermark: the ack must never skip a seq.
      let contiguous = 0;
      while (contiguous < read.length && read[contiguous]?.message.seq === from + contiguous) contiguous += 1;
      const rows = read.slice(0, contiguous);
      room -= rows.length;
      batches.push({ contextId, rows, context });
      // Rotate: a context with a long backlog goes behind the others next time.
      this.pending.delete(contextId);
      this.pending.set(contextId, entry);
    }
    return { batches, full: room <= 0, marks };
  }

  /** Proposes each context's ack; a context is done when nothing happened to it since it was read. */
  private async acknowledge(
    batches: readonly ContextBatch[],
    marks: ReadonlyMap<string, number>,
  ): Promise<void> {
    const { consensus, tailKeep, metrics, log } = this.options;
    const now = this.clock().toISOString();
    await Promise.all(
      batches.map(async ({ contextId, rows, context }) => {
        const entry = this.pending.get(contextId);
        const last = rows[rows.length - 1]?.message.seq;
        if (last === undefined) {
          // Only the contexts row changed: written, nothing to acknowledge.
          if (
            entry !== undefined &&
            entry.mark === marks.get(contextId) &&
            context.last_seq === context.archived_seq
          )
            this.pending.delete(contextId);
          return;
        }
        // Leadership of its group was lost meanwhile: the next leader acknowledges from the watermark.
        if (entry === undefined) return;
        const outcome = await consensus.propose(entry.group, {
          type: 'ack_archived',
          contextId,
          now,
          upToSeq: last,
          tailKeep,
        });
        if (!outcome.ok) {
          // Leadership moved or Raft is busy: the next leader (or pass) starts from the watermark.
          log.debug(
            { type: 'archiver', context_id: contextId, code: outcome.code },
            'archive ack not committed',
          );
          return;
        }
        const result = outcome.result;
        if (!('type' in result) || result.type !== 'ack_archived') return;
        metrics.archive.lag.observe(result.last_seq - result.archived_seq);
        metrics.archive.tailSize.observe(result.tail_size);
        metrics.archive.llmTokenCount.observe(result.window_tokens);
        if (result.trimmed > 0) metrics.archive.trimmedTotal.inc(result.trimmed);
        const current = this.pending.get(contextId);
        if (current === undefined) return;
        current.lag = result.last_seq - result.archived_seq;
        if (current.lag === 0 && current.mark === marks.get(contextId)) this.pending.delete(contextId);
      }),
    );
  }
}
