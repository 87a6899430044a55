// The context state machine: applies committed commands of a group deterministically (no clock,
// no estimator, no randomness: what is not a function of the state travels in the command) and
// serves the reads the service makes after a ReadIndex barrier.
//
// Memory is bounded by configuration: an LRU of decoded context records (`cacheContextsMax`
// contexts or `cacheBytesMax` estimated bytes, whichever comes first) and the writes not yet
// durable (DirtyOverlay, bounded by the host's persistence lag); everything else is read back
// through GroupKv.
//
// Reads run concurrently with applies of the same group. They stay consistent because an apply
// publishes a command's writes and its new records at once, when it commits, and because readers
// start from one snapshot of a context's records: messages are immutable once written, and summary
// messages live under a generation number that changes whenever they are rewritten, so a reader
// that finds its generation gone simply starts over from the newer records.

import type { AppliedEntry, GroupKv, GroupWriteBatch, StateMachine } from '../../raft/index.js';
import type { LlmContextView, MessagesPage, Segment, StoredMessage } from '../api/domain.js';
import type { ContextView } from '../api/domain.js';
import { applyAppend } from './apply-append.js';
import { applyAckArchived } from './apply-archive.js';
import { applyCompact } from './apply-compact.js';
import { applyDeleteContext, applyPatchMetadata, applyPutContext } from './apply-config.js';
import { asError, isLocalFailure } from './apply-guard.js';
import type { RefusedEntry } from './apply-guard.js';
import { CommandDecodeError, decodeCommand } from './commands.js';
import type { Command } from './commands.js';
import { ContextTxn, loadRecords } from './context-txn.js';
import type { ContextRecords } from './context-txn.js';
import { contextView } from './context-view.js';
import { DirtyOverlay } from './dirty-overlay.js';
import type { AppliedEvent, CompactionEvent, ContextChangeEvent } from './events.js';
import { replayEvents, streamPositionOf } from './event-replay.js';
import type { ArchivedAppends, HistoryPoint, ReplayItem, StreamPosition } from './event-replay.js';
import { ApplyTx, GroupReader } from './group-access.js';
import { ContextKeys, KeyKind } from './keys.js';
import { cachedContextBytes } from './cache-weight.js';
import { LruCache } from './lru-cache.js';
import { storedMessage, storedSummaryMessage, windowView } from './message-view.js';
import { decodeMessageRecord, decodeSummaryRecord, decodeWindowRecord } from './records.js';
import type { WindowRecord } from './records.js';
import type { CommandResult } from './results.js';
import { thresholdTokens, usedTokens } from './window-policy.js';

export interface ContextStateMachineOptions {
  /** Contexts whose decoded records stay cached (default 10,000). */
  readonly cacheContextsMax?: number;
  /** Estimated heap bytes of the cached records (cache-weight.ts); default 64 MiB. */
  readonly cacheBytesMax?: number;
  /**
   * Receives every applied event, on every replica, after its command committed. Must not throw:
   * an exception here fails the apply, which the host treats as fatal.
   */
  readonly onEvent?: (event: AppliedEvent) => void;
  /**
   * Stored bytes one read (a tail, an export page, a window) may gather before it stops and says how
   * to continue (default 16 MiB); at least one message is always returned.
   */
  readonly readPageBytesMax?: number;
  /**
   * Told once per refused entry, on every replica (for the log). Whatever it does, the entry's
   * result stays the same: an exception here is ignored.
   */
  readonly onRefusedEntry?: (refusal: RefusedEntry) => void;
  /**
   * Told when a group's state was replaced by a snapshot: its events since the last apply were never
   * announced one by one (live streams of that group resynchronize from the store). Must not throw.
   */
  readonly onRestored?: (group: number) => void;
}

/** A context's stored range and archive watermark (tailBounds). */
export interface TailBounds {
  readonly lastSeq: number;
  readonly archivedSeq: number;
  /** Messages up to here are only in the archive; 0 when none were trimmed. */
  readonly trimmedThroughSeq: number;
}

/** One message as the archive stores it. */
export interface ArchiveRow {
  readonly message: StoredMessage;
  /** The context version this message's append produced. */
  readonly version: number;
  /** The policy run its append triggered (events.ts), if any. */
  readonly compaction?: CompactionEvent;
  /** The window change its append reported, if any (a stream replays it with the message). */
  readonly windowChange?: ContextChangeEvent;
}

export interface ArchiveBacklogEntry {
  readonly contextId: string;
  readonly lastSeq: number;
  readonly archivedSeq: number;
}

/** Default of readPageBytesMax. */
export const readPageBytesDefault = 16 * 2 ** 20;

interface CachedContext extends ContextRecords {
  readonly group: number;
}

const noop: CommandResult = { type: 'noop' };
const readAttemptsMax = 8;

export class ContextStateMachine implements StateMachine<CommandResult> {
  private readonly overlay = new DirtyOverlay();
  private readonly cache: LruCache<string, CachedContext>;
  /** Per group, bumped on every commit: a read that loaded records meanwhile must not cache them. */
  private readonly epochs = new Map<number, number>();
  private readonly onEvent: ((event: AppliedEvent) => void) | undefined;
  private readonly pageBytesMax: number;
  private readonly onRefusedEntry: ((refusal: RefusedEntry) => void) | undefined;
  private readonly onRestored: ((group: number) => void) | undefined;

  constructor(options: ContextStateMachineOptions = {}) {
    this.pageBytesMax = options.readPageBytesMax ?? readPageBytesDefault;
    this.cache = new LruCache(options.cacheContextsMax ?? 10_000, {
      max: options.cacheBytesMax ?? 64 * 2 ** 20,
      weigh: (cached, contextId) => cachedContextBytes(contextId, cached),
    });
    this.onEvent = options.onEvent;
    this.onRefusedEntry = options.onRefusedEntry;
    this.onRestored = options.onRestored;
  }

  // -------------------------------------------------------------------------------------------
  // StateMachine

  async apply(
    group: number,
    entries: readonly AppliedEntry[],
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<readonly CommandResult[]> {
    const results: CommandResult[] = [];
    for (const entry of entries) results.push(await this.applyEntry(group, entry, batch, kv));
    return results;
  }

  persisted(group: number, appliedIndex: number): void {
    this.overlay.persisted(group, appliedIndex);
  }

  restored(group: number): void {
    this.overlay.drop(group);
    this.cache.deleteWhere((cached) => cached.group === group);
    this.bumpEpoch(group);
    this.onRestored?.(group);
  }

  /** Contexts cached and their estimated bytes (for tests and metrics). */
  cacheStats(): { readonly contexts: number; readonly bytes: number } {
    return { contexts: this.cache.size, bytes: this.cache.weight };
  }

  /** Writes applied but not yet reported durable (for tests and metrics). */
  dirtyKeys(): number {
    return this.overlay.size();
  }

  /** Applies one entry; never throws for anything the entry holds (apply-guard.ts). */
  private async applyEntry(
    group: number,
    entry: AppliedEntry,
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<CommandResult> {
    if (entry.data.length === 0) return noop;
    let command: Command;
    try {
      command = decodeCommand(entry.data);
    } catch (error) {
      // decodeCommand throws nothing but CommandDecodeError, a function of the bytes alone.
      const refused = asError(error);
      this.refused({ group, index: entry.index, reason: 'malformed', error: refused });
      return {
        error: 'internal',
        message: error instanceof CommandDecodeError ? refused.message : 'malformed command',
      };
    }
    const tx = new ApplyTx(this.overlay, group, kv);
    let keys: ContextKeys;
    let txn: ContextTxn;
    let result: CommandResult;
    let changed: ContextRecords | undefined;
    try {
      keys = new ContextKeys(command.contextId);
      txn = new ContextTxn(tx, keys, command.now, await this.recordsFor(group, tx, keys));
      result = await execute(txn, command);
      changed = txn.finish();
    } catch (error) {
      if (isLocalFailure(error)) throw error;
      // Nothing of the command left this try: its writes and records are dropped with tx and txn.
      this.refused({ group, index: entry.index, reason: 'failed', error: asError(error) });
      return { error: 'internal', message: 'The command could not be applied; no replica applied it' };
    }
    tx.commit(entry.index, batch);
    if (changed !== undefined) this.cacheApplied(group, keys.contextId, changed);
    this.bumpEpoch(group);
    if (this.onEvent !== undefined) {
      for (const { event, ordinal } of txn.events)
        this.onEvent({
          group,
          contextId: keys.contextId,
          event,
          ...(ordinal === undefined ? {} : { ordinal }),
        });
    }
    return result;
  }

  /**
   * Caches what a command committed. After the commit nothing may throw for the entry's sake (its
   * writes are in the batch already): if weighing the records fails, the context is left uncached
   * and read back from the store next time.
   */
  private cacheApplied(group: number, contextId: string, changed: ContextRecords): void {
    try {
      this.cache.set(contextId, { group, ...changed });
    } catch {
      this.cache.delete(contextId);
    }
  }

  private refused(refusal: RefusedEntry): void {
    try {
      this.onRefusedEntry?.(refusal);
    } catch {
      // Logging must not decide an entry's fate.
    }
  }

  private async recordsFor(
    group: number,
    reader: GroupReader,
    keys: ContextKeys,
  ): Promise<ContextRecords | undefined> {
    const cached = this.cache.get(keys.contextId);
    if (cached !== undefined && cached.group === group) return cached;
    const epoch = this.epoch(group);
    const loaded = await loadRecords(reader, keys);
    // Only records nothing committed over while they loaded may be cached.
    if (loaded !== undefined && this.epoch(group) === epoch)
      this.cache.set(keys.contextId, { group, ...loaded });
    return loaded;
  }

  private epoch(group: number): number {
    return this.epochs.get(group) ?? 0;
  }

  private bumpEpoch(group: number): void {
    this.epochs.set(group, this.epoch(group) + 1);
  }

  // -------------------------------------------------------------------------------------------
  // Reads: call after the group's ReadIndex barrier, with the group's GroupKv.

  async getContext(group: number, kv: GroupKv, contextId: string): Promise<ContextView | undefined> {
    const keys = new ContextKeys(contextId);
    const records = await this.recordsFor(group, new GroupReader(this.overlay, group, kv), keys);
    return records === undefined ? undefined : contextView(contextId, records.context, records.window);
  }

  /** Skips `offset` newest messages and returns the next `limit`, oldest first; [] for unknown ids. */
  async tail(
    group: number,
    kv: GroupKv,
    contextId: string,
    limit: number,
    offset: number,
  ): Promise<StoredMessage[]> {
    const keys = new ContextKeys(contextId);
    const reader = new GroupReader(this.overlay, group, kv);
    const records = await this.recordsFor(group, reader, keys);
    if (records === undefined) return [];
    const toSeq = records.window.lastSeq - offset;
    if (toSeq < 1) return [];
    // The newest messages that fit the page budget: fewer than `limit` when they are large.
    const page = await readMessages(
      reader,
      keys,
      Math.max(1, toSeq - limit + 1),
      toSeq,
      this.pageBytesMax,
      true,
    );
    return page.messages;
  }

  /** Messages with seq > fromSeq, ascending, at most `limit`; undefined for unknown ids. */
  async messages(
    group: number,
    kv: GroupKv,
    contextId: string,
    fromSeq: number,
    limit: number,
  ): Promise<MessagesPage | undefined> {
    const keys = new ContextKeys(contextId);
    const reader = new GroupReader(this.overlay, group, kv);
    const records = await this.recordsFor(group, reader, keys);
    if (records === undefined) return undefined;
    const lastSeq = records.window.lastSeq;
    const toSeq = Math.min(lastSeq, fromSeq + limit);
    if (fromSeq >= toSeq) return { messages: [] };
    const page = await readMessages(reader, keys, fromSeq + 1, toSeq, this.pageBytesMax, false);
    const { messages } = page;
    const lastRead = page.complete ? toSeq : (messages[messages.length - 1]?.seq ?? toSeq);
    return lastRead < lastSeq ? { messages, next_from_seq: lastRead } : { messages };
  }

  /** Where `contextId`'s history stands now, for a stream registering (event-replay.ts). */
  async streamPosition(group: number, kv: GroupKv, contextId: string): Promise<StreamPosition | undefined> {
    const keys = new ContextKeys(contextId);
    const reader = new GroupReader(this.overlay, group, kv);
    // The context and window records must be of one commit (a load from the store reads them
    // apart): taken again while the group committed during the read.
    let records: ContextRecords | undefined;
    for (let attempt = 0; attempt < readAttemptsMax; attempt++) {
      const epoch = this.epoch(group);
      records = await this.recordsFor(group, reader, keys);
      if (this.epoch(group) === epoch) break;
    }
    return records === undefined ? undefined : streamPositionOf(reader, keys, records);
  }

  /**
   * The events after `after` up to `position`, in stream order, in batches; trimmed appends from
   * `archived` when given (event-replay.ts).
   */
  streamEvents(
    group: number,
    kv: GroupKv,
    contextId: string,
    position: StreamPosition,
    after: HistoryPoint,
    archived?: ArchivedAppends,
  ): AsyncGenerator<ReplayItem[]> {
    const reader = new GroupReader(this.overlay, group, kv);
    const keys = new ContextKeys(contextId);
    return replayEvents(reader, keys, position, after, streamPageBytesMax, archived);
  }

  /**
   * Where a context's stored history starts and how far it is archived; undefined for unknown ids.
   * Messages 1..trimmedThroughSeq are only in the archive (read-through.ts).
   */
  async tailBounds(group: number, kv: GroupKv, contextId: string): Promise<TailBounds | undefined> {
    const keys = new ContextKeys(contextId);
    const records = await this.recordsFor(group, new GroupReader(this.overlay, group, kv), keys);
    if (records === undefined) return undefined;
    const { lastSeq, archivedSeq, trimmedThroughSeq } = records.window;
    return { lastSeq, archivedSeq, trimmedThroughSeq };
  }

  /**
   * What the archiver writes: stored messages fromSeq..toSeq with the version each append gave and
   * the compaction it triggered, oldest first, up to the page budget (at least one).
   */
  async archiveRows(
    group: number,
    kv: GroupKv,
    contextId: string,
    fromSeq: number,
    toSeq: number,
  ): Promise<ArchiveRow[]> {
    if (fromSeq > toSeq) return [];
    const keys = new ContextKeys(contextId);
    const reader = new GroupReader(this.overlay, group, kv);
    const range = keys.messageRange(fromSeq, toSeq);
    const { pairs } = await reader.scanWithin(range.gte, range.lte, this.pageBytesMax);
    return pairs.map(([key, value]) => {
      const seq = keys.seqOf(key);
      const record = decodeMessageRecord(value);
      return {
        message: storedMessage(contextId, seq, record),
        version: record.version,
        ...(record.compaction === undefined ? {} : { compaction: record.compaction }),
        ...(record.windowChange === undefined ? {} : { windowChange: record.windowChange }),
      };
    });
  }

  /** Every context of the group with messages not yet archived (the archiver's start point). */
  async archiveBacklog(group: number, kv: GroupKv): Promise<ArchiveBacklogEntry[]> {
    const reader = new GroupReader(this.overlay, group, kv);
    // Window keys are [0x06][id]; an id is UTF-8, which never holds the byte 0xff.
    const pairs = await reader.scan(Uint8Array.of(KeyKind.window), Uint8Array.of(KeyKind.window, 0xff));
    const backlog: ArchiveBacklogEntry[] = [];
    for (const [key, value] of pairs) {
      const window = decodeWindowRecord(value);
      if (window.lastSeq <= window.archivedSeq) continue;
      const contextId = Buffer.from(key.buffer, key.byteOffset + 1, key.byteLength - 1).toString('utf8');
      backlog.push({ contextId, lastSeq: window.lastSeq, archivedSeq: window.archivedSeq });
    }
    return backlog;
  }

  /**
   * The LLM window. With `budgetTokens`, the newest suffix that fits in it, and needs_compaction
   * judged against it instead of the context's budget. Undefined for unknown ids.
   */
  async window(
    group: number,
    kv: GroupKv,
    contextId: string,
    budgetTokens?: number,
  ): Promise<LlmContextView | undefined> {
    const keys = new ContextKeys(contextId);
    const reader = new GroupReader(this.overlay, group, kv);
    for (let attempt = 0; attempt < readAttemptsMax; attempt++) {
      const records = await this.recordsFor(group, reader, keys);
      if (records === undefined) return undefined;
      // Newest first: when the live part alone fills the page budget, older messages (and the
      // summary, the oldest part) are left out and the view says it is truncated.
      const live = await readLiveWindow(reader, keys, records.window, this.pageBytesMax);
      const summary = live.complete ? await readSummary(reader, keys, records.window) : [];
      if (summary === undefined) continue; // rewritten while read: the records are newer now
      return windowBody(records, summary, live.messages, budgetTokens, !live.complete);
    }
    throw new Error(`window of ${contextId}: summary rewritten during ${readAttemptsMax} consecutive reads`);
  }
}

/** Bytes of stored values one page of a stream's replay holds (per subscriber replaying). */
export const streamPageBytesMax = 64 * 1024;

const execute = async (txn: ContextTxn, command: Command): Promise<CommandResult> => {
  switch (command.type) {
    case 'put_context':
      return applyPutContext(txn, command);
    case 'patch_metadata':
      return applyPatchMetadata(txn, command);
    case 'delete_context':
      return applyDeleteContext(txn);
    case 'append':
      return applyAppend(txn, command);
    case 'compact':
      return applyCompact(txn, command);
    case 'ack_archived':
      return applyAckArchived(txn, command);
  }
};

// ---------------------------------------------------------------------------------------------
// Read helpers

/**
 * Messages fromSeq..toSeq, read from the oldest (or the newest, `newestFirst`) while their stored
 * bytes fit `bytesMax`; `complete` is false when the budget stopped the read.
 */
const readMessages = async (
  reader: GroupReader,
  keys: ContextKeys,
  fromSeq: number,
  toSeq: number,
  bytesMax: number,
  newestFirst: boolean,
): Promise<{ readonly messages: StoredMessage[]; readonly complete: boolean }> => {
  const range = keys.messageRange(fromSeq, toSeq);
  const { pairs, complete } = await reader.scanWithin(range.gte, range.lte, bytesMax, newestFirst);
  const messages = pairs.map(([key, value]) =>
    storedMessage(keys.contextId, keys.seqOf(key), decodeMessageRecord(value)),
  );
  return { messages, complete };
};

/** The summary messages still in the window; undefined when their generation is gone. */
const readSummary = async (
  reader: GroupReader,
  keys: ContextKeys,
  window: WindowRecord,
): Promise<StoredMessage[] | undefined> => {
  const { gen, from, count } = window.summary;
  if (from >= count) return [];
  const pairs = await reader.scan(keys.summary(gen, from), keys.summary(gen, count - 1));
  if (pairs.length !== count - from) return undefined;
  return pairs.map(([, value]) => storedSummaryMessage(decodeSummaryRecord(value)));
};

/** The live part of the window, newest first up to the page budget (then in seq order). */
const readLiveWindow = async (
  reader: GroupReader,
  keys: ContextKeys,
  window: WindowRecord,
  bytesMax: number,
): Promise<{ readonly messages: StoredMessage[]; readonly complete: boolean }> => {
  if (window.liveFromSeq > window.lastSeq) return { messages: [], complete: true };
  const range = keys.messageRange(window.liveFromSeq, window.lastSeq);
  const messages: StoredMessage[] = [];
  const { pairs, complete } = await reader.scanWithin(range.gte, range.lte, bytesMax, true);
  for (const [key, value] of pairs) {
    const seq = keys.seqOf(key);
    const record = decodeMessageRecord(value);
    const view = windowView(record, seq, window.filteredThroughSeq, window.filterKinds);
    if (view.parts.length > 0) messages.push(storedMessage(keys.contextId, seq, record, view));
  }
  return { messages, complete };
};

const windowBody = (
  records: ContextRecords,
  summary: readonly StoredMessage[],
  live: readonly StoredMessage[],
  budgetTokens: number | undefined,
  truncated: boolean,
): LlmContextView => {
  const { context, window } = records;
  const all = [...summary, ...live];
  const first = budgetTokens === undefined ? 0 : firstFitting(all, budgetTokens);
  const messages = all.slice(first);
  const used = messages.reduce((sum, message) => sum + message.token_count, 0);
  const budget = budgetTokens ?? context.tokenBudget;
  const summaryReturned = Math.max(0, summary.length - first);
  return {
    version: window.version,
    messages,
    used_tokens: used,
    token_count: used,
    // Judged on the whole window: a budget that cuts messages off is exactly when to compact.
    needs_compaction:
      usedTokens(window) > thresholdTokens({ tokenBudget: budget, triggerRatio: context.triggerRatio }),
    segments: segmentsOf(window, summaryReturned, messages.slice(summaryReturned)),
    metadata: window.lastRun,
    ...(truncated ? { truncated: true as const } : {}),
  };
};

/** Index of the oldest message of the newest suffix whose tokens fit in `budgetTokens`. */
const firstFitting = (messages: readonly StoredMessage[], budgetTokens: number): number => {
  let used = 0;
  for (let index = messages.length - 1; index >= 0; index--) {
    used += messages[index]?.token_count ?? 0;
    if (used > budgetTokens) return index + 1;
  }
  return 0;
};

const segmentsOf = (
  window: WindowRecord,
  summaryCount: number,
  live: readonly StoredMessage[],
): Segment[] => {
  const segments: Segment[] = [];
  if (summaryCount > 0) {
    const { fromSeq, toSeq } = window.summary;
    segments.push(
      fromSeq > 0
        ? { type: 'summary', from_seq: fromSeq, to_seq: toSeq, count: summaryCount }
        : { type: 'summary', count: summaryCount },
    );
  }
  const oldest = live[0];
  const newest = live[live.length - 1];
  if (oldest !== undefined && newest !== undefined) {
    segments.push({ type: 'live', from_seq: oldest.seq, to_seq: newest.seq });
  }
  return segments;
};
