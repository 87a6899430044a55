// The small per-group records: hard state, compaction point and applied state. Each is msgpackr inside
// a checksum frame and validated on read; a record that does not decode is corruption, not a default.

import { Packr } from 'msgpackr';
import type { ConfState, HardState, SnapshotMeta } from '../core/types.js';
import { StorageCorruptionError, frameChecksummed, unframeChecksummed } from './checksum-frame.js';

const packr = new Packr({ useRecords: false });

/**
 * What a group has applied: the last applied entry's (index, term) and the membership as of it. It has
 * the shape of a SnapshotMeta because a snapshot of the group is exactly its space at this point.
 */
export type AppliedState = SnapshotMeta;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isIndex = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

const isNodeList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((node) => typeof node === 'string');

const decodeConf = (value: unknown, what: string): ConfState => {
  if (!isRecord(value) || !isNodeList(value.voters) || !isNodeList(value.learners)) {
    throw new StorageCorruptionError(`${what}: malformed membership`);
  }
  return { voters: value.voters, learners: value.learners };
};

const unpackRecord = (value: Uint8Array, what: string): Record<string, unknown> => {
  const decoded: unknown = packr.unpack(unframeChecksummed(value, what));
  if (!isRecord(decoded)) throw new StorageCorruptionError(`${what}: malformed`);
  return decoded;
};

export const encodeHardState = (state: HardState): Uint8Array =>
  frameChecksummed(packr.pack({ term: state.term, vote: state.vote, commit: state.commit }));

export const decodeHardState = (value: Uint8Array): HardState => {
  const what = 'hard state';
  const record = unpackRecord(value, what);
  const { term, vote, commit } = record;
  if (!isIndex(term) || !isIndex(commit) || !(vote === null || typeof vote === 'string')) {
    throw new StorageCorruptionError(`${what}: malformed`);
  }
  return { term, vote, commit };
};

/** Encodes a SnapshotMeta: the log meta (compaction point) and the applied-state record share it. */
export const encodeSnapshotMeta = (meta: SnapshotMeta): Uint8Array =>
  frameChecksummed(
    packr.pack({
      index: meta.index,
      term: meta.term,
      conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] },
    }),
  );

export const decodeSnapshotMeta = (value: Uint8Array, what = 'snapshot meta'): SnapshotMeta => {
  const record = unpackRecord(value, what);
  const { index, term } = record;
  if (!isIndex(index) || !isIndex(term)) throw new StorageCorruptionError(`${what}: malformed`);
  return { index, term, conf: decodeConf(record.conf, what) };
};

export const encodeAppliedState = encodeSnapshotMeta;

export const decodeAppliedState = (value: Uint8Array): AppliedState =>
  decodeSnapshotMeta(value, 'applied state');
