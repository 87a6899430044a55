// Reading a context's events back from the store, in stream order, a page at a time (what a stream
// replays before it goes live). Two sorted sources are merged by version: the message records
// (each carries its version and the events embedded in it, events.ts) and the events stored under
// their own keys ([0x04][id][version][ordinal], keys.ts). At one version the append comes first:
// an event stored at the version of an append (a PUT, a PATCH, a DELETE) happened after it.
//
// A replay reads up to a position taken when its subscriber registered (StreamPosition): messages
// up to that position's last seq, stored events below its event count. Everything applied later
// reaches the subscriber live, so the seam is exact whatever was applied meanwhile.

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

const batchEvents = 64;
const u32Max = 0xffff_ffff;

/**
 * Events after `after` up to `position`, in stream order, in batches of about `batchEvents`; each
 * store read holds at most `pageBytesMax` bytes of values (and one record).
 */
export async function* replayEvents(
  reader: GroupReader,
  keys: ContextKeys,
  position: StreamPosition,
  after: HistoryPoint,
  pageBytesMax: number,
): AsyncGenerator<ReplayedEvent[]> {
  const afterVersion = after.version;
  // With one version per append, version(seq) = seq + manual compactions before it, so the first
  // seq above `afterVersion` is at least afterVersion + 1 - (all manual compactions).
  const compactions = position.version - position.lastSeq;
  let nextSeq = Math.max(1, afterVersion + 1 - compactions);
  const messages: ReplayedEvent[] = [];
  const readMessages = async (): Promise<void> => {
    while (messages.length === 0 && nextSeq <= position.lastSeq) {
      const range = keys.messageRange(nextSeq, position.lastSeq);
      const { pairs } = await reader.scanWithin(range.gte, range.lte, pageBytesMax);
      if (pairs.length === 0) {
        nextSeq = position.lastSeq + 1;
        return;
      }
      for (const [key, value] of pairs) {
        const seq = keys.seqOf(key);
        nextSeq = seq + 1;
        const record = decodeMessageRecord(value);
        if (record.version > afterVersion)
          for (const event of eventsOfMessage(keys.contextId, seq, record)) messages.push({ event });
      }
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

  let batch: ReplayedEvent[] = [];
  for (;;) {
    await readMessages();
    await readStored();
    const message = messages[0];
    const event = stored[0];
    if (message === undefined && event === undefined) break;
    // Ties go to the append: an event stored at its version was applied after it.
    if (message !== undefined && (event === undefined || message.event.version <= event.event.version)) {
      batch.push(message);
      messages.shift();
    } else if (event !== undefined) {
      batch.push(event);
      stored.shift();
    }
    if (batch.length >= batchEvents) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
