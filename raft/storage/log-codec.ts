// A packed log batch: every entry one group appended in one turn, stored as ONE LevelDB value. LevelDB
// costs per key far more than per byte (~60k keys/s vs ~228k packed entries/s per core), so the host
// never writes one key per entry. Entries in a batch are contiguous, so indexes are implied by the
// key's firstIndex and only (term, kind, data) triples are stored.

import { Packr } from 'msgpackr';
import type { Entry, EntryKind, Index } from '../core/types.js';
import { StorageCorruptionError, frameChecksummed, unframeChecksummed } from './checksum-frame.js';

// Records off: a value must decode without structures shared with the process that wrote it.
const packr = new Packr({ useRecords: false });

const FIELDS_PER_ENTRY = 3;

/** Encodes a non-empty run of contiguous entries (as one Ready carries them). */
export const encodeLogBatch = (entries: readonly Entry[]): Uint8Array => {
  const first = entries[0];
  if (first === undefined) throw new RangeError('a log batch holds at least one entry');
  const flat: (number | Uint8Array)[] = new Array<number | Uint8Array>(entries.length * FIELDS_PER_ENTRY);
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i] as Entry;
    if (entry.index !== first.index + i) throw new RangeError('log batch entries must be contiguous');
    flat[i * FIELDS_PER_ENTRY] = entry.term;
    flat[i * FIELDS_PER_ENTRY + 1] = entry.kind;
    flat[i * FIELDS_PER_ENTRY + 2] = entry.data;
  }
  return frameChecksummed(packr.pack([first.index, flat]));
};

const isEntryKind = (value: unknown): value is EntryKind => value === 0 || value === 1;

/** Decodes a batch stored under `firstIndex`; throws StorageCorruptionError on any mismatch. */
export const decodeLogBatch = (firstIndex: Index, value: Uint8Array): Entry[] => {
  const what = `log batch at ${firstIndex}`;
  const decoded: unknown = packr.unpack(unframeChecksummed(value, what));
  if (!Array.isArray(decoded) || decoded[0] !== firstIndex || !Array.isArray(decoded[1])) {
    throw new StorageCorruptionError(`${what}: malformed`);
  }
  const flat = decoded[1] as unknown[];
  if (flat.length === 0 || flat.length % FIELDS_PER_ENTRY !== 0) {
    throw new StorageCorruptionError(`${what}: malformed entry list`);
  }
  const entries: Entry[] = new Array<Entry>(flat.length / FIELDS_PER_ENTRY);
  for (let i = 0; i < entries.length; i += 1) {
    const term = flat[i * FIELDS_PER_ENTRY];
    const kind = flat[i * FIELDS_PER_ENTRY + 1];
    const data = flat[i * FIELDS_PER_ENTRY + 2];
    if (typeof term !== 'number' || !isEntryKind(kind) || !(data instanceof Uint8Array)) {
      throw new StorageCorruptionError(`${what}: malformed entry ${i}`);
    }
    entries[i] = { index: firstIndex + i, term, kind, data };
  }
  return entries;
};
