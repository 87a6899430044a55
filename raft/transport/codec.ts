// The wire encoding of Raft traffic between hosts: frames (one batch of (group, message) for one
// peer) and snapshot chunks, as msgpack tuples. Frames are the unit of cost on the hot path, so a
// message is a positional tuple with a presence bitmask instead of a keyed map: a heartbeat is
// `[group, type, term, mask, commit, context]`, about ten bytes. Entries' data travels as raw bytes
// and decodes as a copy that owns its bytes (see copyBytes); snapshot pairs, which are written to
// the store and dropped, stay zero-copy views into the received buffer. Pure: the simulator reuses it
// as is.

import { Packr } from 'msgpackr';
import type { GroupMessage, SnapshotChunk } from '../api.js';
import { MessageType } from '../core/types.js';
import type { Entry, EntryKind, GroupId, Message, NodeId, SnapshotMeta } from '../core/types.js';

/** Bumped on any incompatible change; a decoder refuses other versions rather than misreading them. */
export const CODEC_VERSION = 1;

/** A batch of messages from one host to another. */
export interface Frame {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly batch: readonly GroupMessage[];
}

/** A snapshot chunk as it travels: the chunk plus the sending node. */
export interface WireSnapshotChunk {
  readonly from: NodeId;
  readonly chunk: SnapshotChunk;
}

/** The bytes could not be decoded (corrupt, truncated, or from an incompatible version). */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

// Presence bits of a message's optional fields. The fields of the hot messages (heartbeats, App,
// AppResp) have the low bits so their mask stays a one-byte msgpack fixint. `from`/`to` are only
// written when they differ from the frame's, which in practice is never.
const Field = {
  commit: 1 << 0,
  context: 1 << 1,
  index: 1 << 2,
  logTerm: 1 << 3,
  entries: 1 << 4,
  reject: 1 << 5,
  rejectHint: 1 << 6,
  snapshot: 1 << 7,
  from: 1 << 8,
  to: 1 << 9,
} as const;

// Plain arrays and maps only (no msgpackr records: the peer may be another version); 64-bit ints
// decode as numbers because indexes and terms stay far below 2^53.
const packr = new Packr({ useRecords: false, int64AsType: 'number' });

const messageTypes: ReadonlySet<number> = new Set(Object.values(MessageType));

// ---------------------------------------------------------------------------------------------
// Encoding

const encodeEntry = (entry: Entry): unknown[] => [entry.term, entry.index, entry.kind, entry.data];

const encodeMeta = (meta: SnapshotMeta): unknown[] => [
  meta.index,
  meta.term,
  meta.conf.voters,
  meta.conf.learners,
];

const encodeMessage = (group: GroupId, message: Message, from: NodeId, to: NodeId): unknown[] => {
  const tuple: unknown[] = [group, message.type, message.term, 0];
  let mask = 0;
  const put = (bit: number, value: unknown): void => {
    mask |= bit;
    tuple.push(value);
  };
  // The push order below is the wire order; decodeMessage reads in the same order.
  if (message.commit !== undefined) put(Field.commit, message.commit);
  if (message.context !== undefined) put(Field.context, message.context);
  if (message.index !== undefined) put(Field.index, message.index);
  if (message.logTerm !== undefined) put(Field.logTerm, message.logTerm);
  if (message.entries !== undefined) put(Field.entries, message.entries.map(encodeEntry));
  if (message.reject !== undefined) put(Field.reject, message.reject);
  if (message.rejectHint !== undefined) put(Field.rejectHint, message.rejectHint);
  if (message.snapshot !== undefined) put(Field.snapshot, encodeMeta(message.snapshot));
  if (message.from !== from) put(Field.from, message.from);
  if (message.to !== to) put(Field.to, message.to);
  tuple[3] = mask;
  return tuple;
};

export const encodeFrame = (frame: Frame): Uint8Array =>
  packr.pack([
    CODEC_VERSION,
    frame.from,
    frame.to,
    frame.batch.map(({ group, message }) => encodeMessage(group, message, frame.from, frame.to)),
  ]);

export const encodeSnapshotChunk = (from: NodeId, chunk: SnapshotChunk): Uint8Array => {
  // Pairs go flat ([k0, v0, k1, v1, ...]) to save one array header per pair.
  const flatPairs: Uint8Array[] = [];
  for (const [key, value] of chunk.pairs) flatPairs.push(key, value);
  const to = chunk.message.to;
  return packr.pack([
    CODEC_VERSION,
    from,
    to,
    chunk.seq,
    chunk.last,
    encodeMessage(chunk.group, chunk.message, from, to),
    flatPairs,
  ]);
};

export const encodeSnapshotAnswer = (accepted: boolean): Uint8Array => packr.pack([CODEC_VERSION, accepted]);

// ---------------------------------------------------------------------------------------------
// Decoding: every field is checked, so a malformed frame fails here instead of inside a Raft core.

const fail = (what: string): never => {
  throw new CodecError(`malformed ${what}`);
};

const asNumber = (value: unknown, what: string): number =>
  typeof value === 'number' && Number.isFinite(value) ? value : fail(what);

const asString = (value: unknown, what: string): string => (typeof value === 'string' ? value : fail(what));

const asBoolean = (value: unknown, what: string): boolean =>
  typeof value === 'boolean' ? value : fail(what);

const asArray = (value: unknown, what: string): readonly unknown[] =>
  Array.isArray(value) ? (value as unknown[]) : fail(what);

/** A plain Uint8Array view on the same memory (msgpackr yields Buffers; consumers compare types). */
const asBytes = (value: unknown, what: string): Uint8Array =>
  value instanceof Uint8Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : fail(what);

/**
 * A copy owning its bytes. Entries stay in a follower's in-memory log until compaction, which runs
 * per group: a view would pin the whole received frame (every group's messages of one turn, or a
 * pooled slab) for as long as any one of its entries lives, so a quiet group that never compacts
 * would keep every frame it ever got an entry in alive, and memory would follow history.
 */
const copyBytes = (value: unknown, what: string): Uint8Array =>
  value instanceof Uint8Array ? new Uint8Array(value) : fail(what);

const asStrings = (value: unknown, what: string): readonly string[] =>
  asArray(value, what).map((item) => asString(item, what));

const unpack = (bytes: Uint8Array, what: string): readonly unknown[] => {
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch {
    return fail(what);
  }
  const tuple = asArray(decoded, what);
  if (tuple[0] !== CODEC_VERSION) throw new CodecError(`${what}: unsupported codec version`);
  return tuple;
};

const decodeEntry = (value: unknown): Entry => {
  const [term, index, kind, data] = asArray(value, 'entry');
  const entryKind = asNumber(kind, 'entry kind');
  if (entryKind !== 0 && entryKind !== 1) fail('entry kind');
  return {
    term: asNumber(term, 'entry term'),
    index: asNumber(index, 'entry index'),
    kind: entryKind as EntryKind,
    data: copyBytes(data, 'entry data'),
  };
};

const decodeMeta = (value: unknown): SnapshotMeta => {
  const [index, term, voters, learners] = asArray(value, 'snapshot meta');
  return {
    index: asNumber(index, 'snapshot index'),
    term: asNumber(term, 'snapshot term'),
    conf: { voters: asStrings(voters, 'voters'), learners: asStrings(learners, 'learners') },
  };
};

type MutableMessage = { -readonly [K in keyof Message]: Message[K] };

const decodeMessage = (value: unknown, from: NodeId, to: NodeId): GroupMessage => {
  const tuple = asArray(value, 'message');
  const type = asNumber(tuple[1], 'message type');
  if (!messageTypes.has(type)) fail('message type');
  const mask = asNumber(tuple[3], 'message mask');
  const message: MutableMessage = { type: type as MessageType, from, to, term: asNumber(tuple[2], 'term') };
  let position = 4;
  const has = (bit: number): boolean => (mask & bit) !== 0;
  const next = (): unknown => {
    if (position >= tuple.length) fail('message: missing field');
    return tuple[position++];
  };
  if (has(Field.commit)) message.commit = asNumber(next(), 'commit');
  if (has(Field.context)) message.context = asNumber(next(), 'context');
  if (has(Field.index)) message.index = asNumber(next(), 'index');
  if (has(Field.logTerm)) message.logTerm = asNumber(next(), 'logTerm');
  if (has(Field.entries)) message.entries = asArray(next(), 'entries').map(decodeEntry);
  if (has(Field.reject)) message.reject = asBoolean(next(), 'reject');
  if (has(Field.rejectHint)) message.rejectHint = asNumber(next(), 'rejectHint');
  if (has(Field.snapshot)) message.snapshot = decodeMeta(next());
  if (has(Field.from)) message.from = asString(next(), 'from');
  if (has(Field.to)) message.to = asString(next(), 'to');
  if (position !== tuple.length) fail('message: trailing fields');
  return { group: asNumber(tuple[0], 'group'), message };
};

/** Throws CodecError on anything but a well-formed frame of this codec version. */
export const decodeFrame = (bytes: Uint8Array): Frame => {
  const [, from, to, messages] = unpack(bytes, 'frame');
  const sender = asString(from, 'frame sender');
  const receiver = asString(to, 'frame receiver');
  return {
    from: sender,
    to: receiver,
    batch: asArray(messages, 'frame batch').map((message) => decodeMessage(message, sender, receiver)),
  };
};

/** Throws CodecError on anything but a well-formed chunk of this codec version. */
export const decodeSnapshotChunk = (bytes: Uint8Array): WireSnapshotChunk => {
  const [, from, to, seq, last, message, flatPairs] = unpack(bytes, 'snapshot chunk');
  const sender = asString(from, 'chunk sender');
  const { group, message: decoded } = decodeMessage(message, sender, asString(to, 'chunk receiver'));
  const flat = asArray(flatPairs, 'chunk pairs');
  if (flat.length % 2 !== 0) fail('chunk pairs');
  const pairs: (readonly [Uint8Array, Uint8Array])[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    pairs.push([asBytes(flat[i], 'chunk key'), asBytes(flat[i + 1], 'chunk value')]);
  }
  return {
    from: sender,
    chunk: {
      group,
      message: decoded,
      seq: asNumber(seq, 'chunk seq'),
      pairs,
      last: asBoolean(last, 'chunk last'),
    },
  };
};

export const decodeSnapshotAnswer = (bytes: Uint8Array): boolean => {
  const [, accepted] = unpack(bytes, 'snapshot answer');
  return asBoolean(accepted, 'snapshot answer');
};
