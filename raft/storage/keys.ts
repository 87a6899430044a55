// The binary key layout of the one LevelDB a process keeps for all its Raft groups. Keys sort by
// (kind, group, ...), so one group's log is a contiguous run and one group's state-machine space
// (what a snapshot carries) is a contiguous range. Kinds 0x04..0x7f are left to the service.

import type { KeyRange } from '../api.js';
import type { GroupId, Index } from '../core/types.js';

export const KeyKind = {
  /** `[0x01][group u16]` → the group's HardState. */
  HardState: 0x01,
  /** `[0x02][group u16][firstIndex u64]` → a packed batch of entries appended in one turn. */
  LogBatch: 0x02,
  /** `[0x03][group u16]` → the compaction point (SnapshotMeta). */
  LogMeta: 0x03,
  /** `[0x80][group u16][...]` → the group's snapshot space: applied state plus state-machine keys. */
  GroupSpace: 0x80,
} as const;

/** Under `[0x80][group]`: `[0x00]` is the applied-state record, `[0x01 ++ suffix]` the state machine's keys. */
export const APPLIED_STATE_TAG = 0x00;
export const STATE_MACHINE_TAG = 0x01;

const GROUP_MAX = 0xffff;
const TWO_POW_32 = 0x1_0000_0000;

const assertGroup = (group: GroupId): void => {
  if (!Number.isInteger(group) || group < 0 || group > GROUP_MAX) {
    throw new RangeError(`group ${group} is not a u16`);
  }
};

const groupKey = (kind: number, group: GroupId, extraBytes: number): Uint8Array => {
  assertGroup(group);
  const key = new Uint8Array(3 + extraBytes);
  key[0] = kind;
  key[1] = group >>> 8;
  key[2] = group & 0xff;
  return key;
};

const writeU64 = (target: Uint8Array, offset: number, value: number): void => {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`index ${value} is not a u64`);
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint32(offset, Math.floor(value / TWO_POW_32));
  view.setUint32(offset + 4, value >>> 0);
};

const readU64 = (source: Uint8Array, offset: number): number => {
  const view = new DataView(source.buffer, source.byteOffset, source.byteLength);
  return view.getUint32(offset) * TWO_POW_32 + view.getUint32(offset + 4);
};

export const hardStateKey = (group: GroupId): Uint8Array => groupKey(KeyKind.HardState, group, 0);

export const logMetaKey = (group: GroupId): Uint8Array => groupKey(KeyKind.LogMeta, group, 0);

export const logBatchKey = (group: GroupId, firstIndex: Index): Uint8Array => {
  const key = groupKey(KeyKind.LogBatch, group, 8);
  writeU64(key, 3, firstIndex);
  return key;
};

/** The prefix `[0x80][group]` of a group's snapshot space. */
export const groupSpacePrefix = (group: GroupId): Uint8Array => groupKey(KeyKind.GroupSpace, group, 0);

export const appliedStateKey = (group: GroupId): Uint8Array => {
  const key = groupKey(KeyKind.GroupSpace, group, 1);
  key[3] = APPLIED_STATE_TAG;
  return key;
};

/** `[0x80][group][0x01 ++ suffix]`: where a state machine's key `suffix` lives. */
export const stateMachineKey = (group: GroupId, suffix: Uint8Array): Uint8Array => {
  const key = groupKey(KeyKind.GroupSpace, group, 1 + suffix.length);
  key[3] = STATE_MACHINE_TAG;
  key.set(suffix, 4);
  return key;
};

/** A snapshot pair's key is relative to `[0x80][group]`; this puts the prefix back. */
export const groupSpaceKey = (group: GroupId, relative: Uint8Array): Uint8Array => {
  const key = groupKey(KeyKind.GroupSpace, group, relative.length);
  key.set(relative, 3);
  return key;
};

/** The group a key of kind HardState, LogBatch, LogMeta or GroupSpace belongs to. */
export const keyGroup = (key: Uint8Array): GroupId => {
  if (key.length < 3) throw new RangeError('key too short to carry a group');
  return ((key[1] ?? 0) << 8) | (key[2] ?? 0);
};

export const logBatchFirstIndex = (key: Uint8Array): Index => {
  if (key.length !== 11 || key[0] !== KeyKind.LogBatch) throw new RangeError('not a log batch key');
  return readU64(key, 3);
};

/** The smallest key greater than every key starting with `prefix` (undefined if there is none). */
export const prefixEnd = (prefix: Uint8Array): Uint8Array | undefined => {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    const byte = end[i] ?? 0;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
};

/** Every key starting with `prefix`. */
export const prefixRange = (prefix: Uint8Array): KeyRange => {
  const end = prefixEnd(prefix);
  return end === undefined ? { gte: prefix } : { gte: prefix, lt: end };
};

/** Every key of one kind, across all groups. */
export const kindRange = (kind: number): KeyRange => prefixRange(Uint8Array.of(kind));

/** The log batches of one group. */
export const groupLogRange = (group: GroupId): KeyRange => prefixRange(groupKey(KeyKind.LogBatch, group, 0));

const concat = (prefix: Uint8Array, suffix: Uint8Array): Uint8Array => {
  const key = new Uint8Array(prefix.length + suffix.length);
  key.set(prefix, 0);
  key.set(suffix, prefix.length);
  return key;
};

/**
 * Translates a range over suffixes under `prefix` into a range over full keys, bounded to the prefix
 * (an open end stays inside the prefix rather than running into the next group).
 */
export const rangeUnderPrefix = (prefix: Uint8Array, range: KeyRange): KeyRange => {
  const whole = prefixRange(prefix);
  const lower =
    range.gte !== undefined
      ? { gte: concat(prefix, range.gte) }
      : range.gt !== undefined
        ? { gt: concat(prefix, range.gt) }
        : { gte: prefix };
  const upper =
    range.lte !== undefined
      ? { lte: concat(prefix, range.lte) }
      : range.lt !== undefined
        ? { lt: concat(prefix, range.lt) }
        : whole.lt !== undefined
          ? { lt: whole.lt }
          : {};
  return {
    ...lower,
    ...upper,
    ...(range.reverse !== undefined ? { reverse: range.reverse } : {}),
    ...(range.limit !== undefined ? { limit: range.limit } : {}),
  };
};

/** The state-machine space of a group: `[0x80][group][0x01]`. */
export const stateMachinePrefix = (group: GroupId): Uint8Array => stateMachineKey(group, new Uint8Array(0));
