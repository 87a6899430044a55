// The stored records of the context state machine (values under the keys of keys.ts), and their
// encoding: `[0x01][msgpack array]`, positional to keep the hot records (message, window) small.

import type { ContextStatus, JsonObject, MessagePart, Policy } from '../api/domain.js';
import { decodeTagged, encodeTaggedTransient } from './codec.js';
import type { CompactionEvent, ContextChangeEvent, StoredEvent } from './events.js';

const recordFormatV1 = 0x01;

/** Configuration and lifecycle of a context; rewritten only by PUT, PATCH, DELETE and compact. */
export interface ContextRecord {
  readonly status: ContextStatus;
  readonly tokenBudget: number;
  readonly triggerRatio: number;
  readonly policy: Policy;
  readonly metadata: JsonObject;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Non-message events stored so far; the ordinal of the next one (keys.ts). */
  readonly eventCount: number;
}

/** Messages installed by the last compaction, stored under generation `gen`, indexes 0..count-1. */
export interface SummaryState {
  gen: number;
  /** Index of the oldest summary message still in the window (a policy trims from the front). */
  from: number;
  count: number;
  /** Tokens of the summary messages still in the window (indexes from..count-1). */
  tokens: number;
  /** The records hold parts already filtered with the window's `filterKinds`. */
  filtered: boolean;
  /** Seqs the summary stands for; 0 when it replaced no appended message. */
  fromSeq: number;
  toSeq: number;
}

/**
 * Counters and LLM-window bookkeeping; rewritten by every append. The window is the summary's
 * messages from..count-1 followed by the appended messages liveFromSeq..lastSeq, those at or below
 * `filteredThroughSeq` seen without the parts `filterKinds` removes (and left out when none remain).
 * Keeping sums here instead of the window itself keeps an append O(message size).
 * Mutable only inside one apply call, on a private copy (cloneWindow); cached copies are never mutated.
 */
export interface WindowRecord {
  /** Invariant: +1 per append (policy run included) and per manual compaction, nothing else. */
  version: number;
  /** Invariant: seqs 1..lastSeq exist, contiguous. */
  lastSeq: number;
  /** Highest seq the archiver acknowledged (ack_archived moves it). Invariant: <= lastSeq, monotonic. */
  archivedSeq: number;
  /**
   * Messages 1..trimmedThroughSeq were trimmed from the store after archiving (apply-archive.ts);
   * reads of them go to the archive. Invariant: trimmedThroughSeq <= archivedSeq and
   * trimmedThroughSeq < liveFromSeq (no message of the LLM window is ever trimmed).
   */
  trimmedThroughSeq: number;
  /** Invariant: 1 <= liveFromSeq <= lastSeq + 1. */
  liveFromSeq: number;
  /** Invariant: the sum of the token counts (filtered where filtered) of the live window messages. */
  liveTokens: number;
  /** Live messages in the window (those filtering did not empty). */
  liveCount: number;
  filteredThroughSeq: number;
  /** Sorted, distinct part-type prefixes applied to filtered messages. */
  filterKinds: readonly string[];
  summary: SummaryState;
  /** Seq of the first append that carried an idempotency key; 0 if none ever did. */
  firstKeyedSeq: number;
  /** Describes the last policy run or compaction (the window's `metadata`). */
  lastRun: JsonObject;
}

/** One appended message: immutable once written; policies never touch it. */
export interface MessageRecord {
  readonly version: number;
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata?: JsonObject;
  readonly tokenCount: number;
  readonly partTokens: readonly number[];
  readonly insertedAt: string;
  readonly clientId?: string;
  /** Kept so the key can be forgotten 10,000 appends later (idempotency). */
  readonly idempotencyKey?: string;
  /** The policy run this append triggered, at the same `version` (events.ts). */
  readonly compaction?: CompactionEvent;
  /** The window's new state when this append moved needs_compaction or ran the policy (events.ts). */
  readonly windowChange?: ContextChangeEvent;
}

/** One message installed by compaction; `id` is always set (generated at install when the client sent none). */
export interface SummaryRecord {
  readonly id: string;
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata?: JsonObject;
  readonly tokenCount: number;
  readonly partTokens: readonly number[];
  readonly insertedAt: string;
}

export interface IdempotencyRecord {
  readonly seq: number;
  readonly version: number;
  readonly tokenEstimate: number;
  /** messageFingerprint of the appended message: a reuse of the key for other content conflicts. */
  readonly fingerprint: string;
}

export const initialWindow = (): WindowRecord => ({
  version: 0,
  lastSeq: 0,
  archivedSeq: 0,
  trimmedThroughSeq: 0,
  liveFromSeq: 1,
  liveTokens: 0,
  liveCount: 0,
  filteredThroughSeq: 0,
  filterKinds: [],
  summary: { gen: 0, from: 0, count: 0, tokens: 0, filtered: false, fromSeq: 0, toSeq: 0 },
  firstKeyedSeq: 0,
  lastRun: {},
});

export const cloneWindow = (window: WindowRecord): WindowRecord => ({
  ...window,
  summary: { ...window.summary },
});

// ---------------------------------------------------------------------------------------------
// Encoding. Decoders trust their input: only this module writes these values.

/**
 * A stored value is not a record this code writes: the local store holds something it should not
 * (corruption, or data of another release). Fatal where it is met during an apply, like a failed
 * read: the entry being applied is not at fault, and other replicas' stores may be fine.
 */
export class StoredRecordError extends Error {
  override readonly name = 'StoredRecordError';
}

const fields = (data: Uint8Array): unknown[] => {
  let decoded: { readonly tag: number; readonly value: unknown };
  try {
    decoded = decodeTagged(data);
  } catch (error) {
    throw new StoredRecordError('undecodable stored record', { cause: error });
  }
  const { tag, value } = decoded;
  if (tag !== recordFormatV1 || !Array.isArray(value))
    throw new StoredRecordError(`unknown record format ${tag}`);
  return value as unknown[];
};

const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value);

/** `{[key]: value}` when value is present, `{}` otherwise (exactOptionalPropertyTypes-friendly). */
const opt = <K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } =>
  (value === null || value === undefined ? {} : { [key]: value }) as { [P in K]?: V };

export const encodeContextRecord = (r: ContextRecord): Uint8Array =>
  encodeTaggedTransient(recordFormatV1, [
    r.status === 'active' ? 0 : 1,
    r.tokenBudget,
    r.triggerRatio,
    r.policy,
    r.metadata,
    r.createdAt,
    r.updatedAt,
    r.eventCount,
  ]);

export const decodeContextRecord = (data: Uint8Array): ContextRecord => {
  const f = fields(data);
  return {
    status: f[0] === 0 ? 'active' : 'tombstoned',
    tokenBudget: f[1] as number,
    triggerRatio: f[2] as number,
    policy: f[3] as Policy,
    metadata: f[4] as JsonObject,
    createdAt: f[5] as string,
    updatedAt: f[6] as string,
    eventCount: f[7] as number,
  };
};

export const encodeWindowRecord = (w: WindowRecord): Uint8Array => {
  const s = w.summary;
  return encodeTaggedTransient(recordFormatV1, [
    w.version,
    w.lastSeq,
    w.archivedSeq,
    w.liveFromSeq,
    w.liveTokens,
    w.liveCount,
    w.filteredThroughSeq,
    w.filterKinds,
    [s.gen, s.from, s.count, s.tokens, s.filtered ? 1 : 0, s.fromSeq, s.toSeq],
    w.firstKeyedSeq,
    w.lastRun,
    w.trimmedThroughSeq,
  ]);
};

export const decodeWindowRecord = (data: Uint8Array): WindowRecord => {
  const f = fields(data);
  const s = f[8] as number[];
  return {
    version: f[0] as number,
    lastSeq: f[1] as number,
    archivedSeq: f[2] as number,
    liveFromSeq: f[3] as number,
    liveTokens: f[4] as number,
    liveCount: f[5] as number,
    filteredThroughSeq: f[6] as number,
    filterKinds: f[7] as string[],
    summary: {
      gen: s[0] ?? 0,
      from: s[1] ?? 0,
      count: s[2] ?? 0,
      tokens: s[3] ?? 0,
      filtered: s[4] === 1,
      fromSeq: s[5] ?? 0,
      toSeq: s[6] ?? 0,
    },
    firstKeyedSeq: f[9] as number,
    lastRun: f[10] as JsonObject,
    // Absent from records written before trimming existed.
    trimmedThroughSeq: (f[11] as number | undefined) ?? 0,
  };
};

export const encodeMessageRecord = (m: MessageRecord): Uint8Array =>
  encodeTaggedTransient(recordFormatV1, [
    m.version,
    m.role,
    m.parts,
    orNull(m.metadata),
    m.tokenCount,
    m.partTokens,
    m.insertedAt,
    orNull(m.clientId),
    orNull(m.idempotencyKey),
    orNull(m.compaction),
    // Absent rather than null when unset: records without it keep their old bytes.
    ...(m.windowChange === undefined ? [] : [m.windowChange]),
  ]);

export const decodeMessageRecord = (data: Uint8Array): MessageRecord => {
  const f = fields(data);
  return {
    version: f[0] as number,
    role: f[1] as string,
    parts: f[2] as MessagePart[],
    ...opt('metadata', f[3] as JsonObject | null),
    tokenCount: f[4] as number,
    partTokens: f[5] as number[],
    insertedAt: f[6] as string,
    ...opt('clientId', f[7] as string | null),
    ...opt('idempotencyKey', f[8] as string | null),
    ...opt('compaction', f[9] as CompactionEvent | null),
    ...opt('windowChange', f[10] as ContextChangeEvent | undefined),
  };
};

export const encodeSummaryRecord = (m: SummaryRecord): Uint8Array =>
  encodeTaggedTransient(recordFormatV1, [
    m.id,
    m.role,
    m.parts,
    orNull(m.metadata),
    m.tokenCount,
    m.partTokens,
    m.insertedAt,
  ]);

export const decodeSummaryRecord = (data: Uint8Array): SummaryRecord => {
  const f = fields(data);
  return {
    id: f[0] as string,
    role: f[1] as string,
    parts: f[2] as MessagePart[],
    ...opt('metadata', f[3] as JsonObject | null),
    tokenCount: f[4] as number,
    partTokens: f[5] as number[],
    insertedAt: f[6] as string,
  };
};

export const encodeIdempotencyRecord = (r: IdempotencyRecord): Uint8Array =>
  encodeTaggedTransient(recordFormatV1, [r.seq, r.version, r.tokenEstimate, r.fingerprint]);

export const decodeIdempotencyRecord = (data: Uint8Array): IdempotencyRecord => {
  const f = fields(data);
  return {
    seq: f[0] as number,
    version: f[1] as number,
    tokenEstimate: f[2] as number,
    fingerprint: f[3] as string,
  };
};

export const encodeEventRecord = (event: StoredEvent): Uint8Array =>
  encodeTaggedTransient(recordFormatV1, [event]);

export const decodeEventRecord = (data: Uint8Array): StoredEvent => fields(data)[0] as StoredEvent;
