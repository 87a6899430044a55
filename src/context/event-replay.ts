// Reading a context's events back, in stream order, a page at a time (what a stream replays before
// it goes live). Two sorted sources are merged by version: the appends (each message record carries
// its version and the events embedded in it, events.ts) and the events stored under their own keys
// ([0x04][id][version][ordinal], keys.ts). At one version the append comes first: an event stored at
// the version of an append (a PUT, a PATCH, a DELETE) happened after it.
//
// Appends the archiver trimmed from the store (seq <= trimmedThroughSeq) are read back from the
// archive when one is given (ArchivedAppends), in pages; the stored events are never trimmed. An
// append neither source can supply whole (rows missing from the archive, or archived before it kept
// window changes) is a `gap` item: the versions from the one expected up to the next append read
// are skipped, never sent in part.
//
// A replay reads up to a position taken when its subscriber registered (StreamPosition): messages
// up to that position's last seq, stored events below its event count. Everything applied later
// reaches the subscriber live, so the seam is exact whatever was applied meanwhile. A trim can
// apply during the replay and take messages the replay has not read yet: the store's messages are
// checked to be contiguous, and a hole is a HistoryTrimmedError (the subscriber starts again from
// its cursor, at a new position), never a silent skip. Batches end between versions, so a
// subscriber that stops or starts again after a batch has had each version whole.

import type { ArchivedAppend } from './archive-reader.js';
import type { ContextEvent } from './events.js';

/** An event read back, with its ordinal when it is stored under its own key (as applied events carry). */
export interface ReplayedEvent {
  readonly event: ContextEvent;
  readonly ordinal?: number;
}

/**
 * A point in a context's history to read after: every event with a greater version, and, when
 * `ordinal` is given, also the stored events from that ordinal on at `version` itself (a position
 * taken from a StreamPosition: {version, ordinal: eventCount}). Without it, a client's cursor.
 */
export interface HistoryPoint {
  readonly version: number;
  readonly ordinal?: number;
}
import type { GroupReader } from './group-access.js';
import type { ContextKeys } from './keys.js';
import { storedMessage } from './message-view.js';
import { decodeEventRecord, decodeMessageRecord } from './records.js';
import type { MessageRecord, WindowRecord } from './records.js';
import type { ContextRecords } from './context-txn.js';

/** Where a context's history stood when a subscriber registered. */
export interface StreamPosition {
  readonly version: number;
  readonly lastSeq: number;
  /** Events stored under their own keys so far: those with a lower ordinal belong to the replay. */
  readonly eventCount: number;
  readonly tombstoned: boolean;
  /** Messages 1..trimmedThroughSeq are no longer in the store (only in the archive). */
  readonly trimmedThroughSeq: number;
  /**
   * The oldest version this node can replay completely: 1 while it holds every message. Once the
   * archiver trims the hot tail, the version of the oldest message still held; a cursor below it
   * gets a `gap` frame (the rest comes from GET /messages, which reads through to the archive).
   */
  readonly retainedFromVersion: number;
}

/**
 * The oldest seq this node holds for a context: every seq until the archiver trims the hot tail,
 * then the first after the trimmed ones (apply-archive.ts). A stream whose cursor is older gets a
 * `gap` frame and reads the difference from /messages, which reads it back from the archive.
 */
export const retainedFromSeq = (window: WindowRecord): number => window.trimmedThroughSeq + 1;

export const streamPositionOf = async (
  reader: GroupReader,
  keys: ContextKeys,
  records: ContextRecords,
): Promise<StreamPosition> => {
  const { context, window } = records;
  const firstSeq = retainedFromSeq(window);
  let retainedFromVersion = 1;
  if (firstSeq > 1 && firstSeq <= window.lastSeq) {
    const first = await reader.get(keys.message(firstSeq));
    retainedFromVersion = first === undefined ? window.version + 1 : decodeMessageRecord(first).version;
  }
  return {
    version: window.version,
    lastSeq: window.lastSeq,
    eventCount: context.eventCount,
    tombstoned: context.status === 'tombstoned',
    trimmedThroughSeq: window.trimmedThroughSeq,
    retainedFromVersion,
  };
};

/** The events a message record stands for, in order: the message, its policy run, its window change. */
export const eventsOfMessage = (contextId: string, seq: number, record: MessageRecord): ContextEvent[] => {
  const events: ContextEvent[] = [
    { type: 'message', version: record.version, seq, message: storedMessage(contextId, seq, record) },
  ];
  if (record.compaction !== undefined) events.push(record.compaction);
  if (record.windowChange !== undefined) events.push(record.windowChange);
  return events;
};

/** The versions a replay could not supply: it continues at `actual` (API.md `gap`). */
export interface ReplayGap {
  readonly gap: { readonly expected: number; readonly actual: number };
}

export type ReplayItem = ReplayedEvent | ReplayGap;

export const isReplayGap = (item: ReplayItem): item is ReplayGap => 'gap' in item;

/** The store lost messages the replay had not read yet (a trim applied meanwhile): start again. */
export class HistoryTrimmedError extends Error {
  override readonly name = 'HistoryTrimmedError';
}

/** One context's archived appends with afterSeq < seq <= throughSeq, ascending, at most `limit`. */
export type ArchivedAppends = (
  afterSeq: number,
  throughSeq: number,
  limit: number,
) => Promise<readonly ArchivedAppend[]>;

const batchEvents = 64;
/** Archived appends read per query: a page, never a whole history. */
const archivePageRows = 256;
const u32Max = 0xffff_ffff;

const eventsOfArchived = (append: ArchivedAppend): ContextEvent[] => {
  const { message, version } = append;
  const events: ContextEvent[] = [{ type: 'message', version, seq: message.seq, message }];
  if (append.compaction !== undefined) events.push(append.compaction);
  if (append.windowChange !== undefined) events.push(append.windowChange);
  return events;
};

/**
 * Events after `after` up to `position`, in stream order, in batches of about `batchEvents` that
 * end between versions; each store read holds at most `pageBytesMax` bytes of values (and one
 * record), each archive read at most `archivePageRows` rows. Without `archived`, the replay starts
 * at the store's first message (the caller sent a gap for anything older).
 */
export async function* replayEvents(
  reader: GroupReader,
  keys: ContextKeys,
  position: StreamPosition,
  after: HistoryPoint,
  pageBytesMax: number,
  archived?: ArchivedAppends,
): AsyncGenerator<ReplayItem[]> {
  const afterVersion = after.version;
  const storedFromSeq = position.trimmedThroughSeq + 1;
  // With one version per append, version(seq) = seq + manual compactions before it, so the first
  // seq above `afterVersion` is at least afterVersion + 1 - (all manual compactions).
  const compactions = position.version - position.lastSeq;
  let nextSeq = Math.max(1, afterVersion + 1 - compactions);
  if (archived === undefined) nextSeq = Math.max(nextSeq, storedFromSeq);
  /** Appends read, in seq order; a gap item stands before the first append after a hole. */
  const messages: ReplayItem[] = [];
  let lastPushed = afterVersion;
  /** Appends were missing since the last one pushed: the next one pushed is preceded by a gap. */
  let holeSince: number | undefined;

  const push = (version: number, events: readonly ContextEvent[]): void => {
    if (version <= afterVersion) return;
    if (holeSince !== undefined) {
      if (version > holeSince) messages.push({ gap: { expected: holeSince, actual: version } });
      holeSince = undefined;
    }
    for (const event of events) messages.push({ event });
    lastPushed = version;
  };
  const hole = (): void => {
    holeSince ??= lastPushed + 1;
  };

  const readArchived = async (read: ArchivedAppends): Promise<void> => {
    const throughSeq = position.trimmedThroughSeq;
    const rows = await read(nextSeq - 1, throughSeq, archivePageRows);
    if (rows.length === 0) {
      hole(); // the archive lacks the rest of the trimmed range
      nextSeq = throughSeq + 1;
      return;
    }
    for (const row of rows) {
      if (row.message.seq !== nextSeq || !row.eventsComplete) hole();
      nextSeq = row.message.seq + 1;
      if (row.eventsComplete) push(row.version, eventsOfArchived(row));
    }
  };

  const readStore = async (): Promise<void> => {
    const range = keys.messageRange(nextSeq, position.lastSeq);
    const { pairs } = await reader.scanWithin(range.gte, range.lte, pageBytesMax);
    if (pairs.length === 0) throw new HistoryTrimmedError(`messages from ${nextSeq} left the store`);
    for (const [key, value] of pairs) {
      const seq = keys.seqOf(key);
      if (seq !== nextSeq) throw new HistoryTrimmedError(`message ${nextSeq} left the store`);
      nextSeq = seq + 1;
      const record = decodeMessageRecord(value);
      push(record.version, eventsOfMessage(keys.contextId, seq, record));
    }
  };

  const readMessages = async (): Promise<void> => {
    while (messages.length === 0 && nextSeq <= position.lastSeq) {
      if (nextSeq < storedFromSeq && archived !== undefined) await readArchived(archived);
      else await readStore();
    }
    // A hole up to the end of the history: the replay continues after the position's version.
    if (messages.length === 0 && holeSince !== undefined && holeSince <= position.version) {
      messages.push({ gap: { expected: holeSince, actual: position.version + 1 } });
      holeSince = undefined;
    }
  };

  // Ordinals grow in apply order, so the stored events after a position are those from its ordinal.
  const fromOrdinal = after.ordinal;
  let storedFrom =
    fromOrdinal === undefined ? keys.event(afterVersion + 1, 0) : keys.event(afterVersion, fromOrdinal);
  const storedTo = keys.event(position.version, u32Max);
  let storedMore =
    position.eventCount > (fromOrdinal ?? 0) &&
    (fromOrdinal === undefined ? afterVersion < position.version : afterVersion <= position.version);
  const stored: ReplayedEvent[] = [];
  const readStored = async (): Promise<void> => {
    while (stored.length === 0 && storedMore) {
      const { pairs, complete } = await reader.scanWithin(storedFrom, storedTo, pageBytesMax);
      for (const [key, value] of pairs) {
        const { version, ordinal } = keys.eventPositionOf(key);
        if (ordinal < position.eventCount && ordinal >= (fromOrdinal ?? 0))
          stored.push({ event: decodeEventRecord(value), ordinal });
        storedFrom = ordinal < u32Max ? keys.event(version, ordinal + 1) : keys.event(version + 1, 0);
      }
      if (complete) storedMore = false;
    }
  };

  let batch: ReplayItem[] = [];
  let batchVersion = afterVersion;
  const take = (item: ReplayItem): ReplayItem[] | undefined => {
    const version = isReplayGap(item) ? item.gap.actual - 1 : item.event.version;
    // A full batch is handed out only where a new version starts: each version leaves whole.
    const full = batch.length >= batchEvents && version > batchVersion ? batch : undefined;
    if (full !== undefined) batch = [];
    batch.push(item);
    batchVersion = version;
    return full;
  };
  for (;;) {
    await readMessages();
    await readStored();
    const message = messages[0];
    const event = stored[0];
    if (message === undefined && event === undefined) break;
    let next: ReplayItem;
    if (message !== undefined && isReplayGap(message)) {
      // Stored events of the versions before the gap go first; those it skips are dropped.
      if (event !== undefined && event.event.version < message.gap.expected) {
        next = event;
        stored.shift();
      } else if (event !== undefined && event.event.version < message.gap.actual) {
        stored.shift();
        continue;
      } else {
        next = message;
        messages.shift();
      }
    } else if (
      message !== undefined &&
      (event === undefined || message.event.version <= event.event.version)
    ) {
      // Ties go to the append: an event stored at its version was applied after it.
      next = message;
      messages.shift();
    } else if (event !== undefined) {
      next = event;
      stored.shift();
    } else {
      break;
    }
    const full = take(next);
    if (full !== undefined) yield full;
  }
  if (batch.length > 0) yield batch;
}
