// A deliberately small state machine for real-I/O tests and the Raft benchmark. Every applied entry
// bumps the group's count and folds its bytes into a chained FNV-1a digest, so two replicas with the
// same (count, digest) applied the same entries in the same order. An entry encoded with `encodePut`
// also stores a key/value pair, so a test can check that a specific acknowledged proposal survived.
// The summary record is written in the host's apply batch, atomically with the applied index; the
// entry bytes themselves live only in the Raft log (written once).

import type {
  AppliedEntry,
  GroupKv,
  GroupWriteBatch,
  StateMachine,
  GroupId,
  Index,
  SnapshotMeta,
} from '../../raft/index.js';

/** What a proposer gets back: the group's applied-entry count including this entry. */
export interface KvCounterResult {
  readonly count: number;
}

export interface GroupSummary {
  readonly count: number;
  /** FNV-1a over every applied entry's bytes, in order; unsigned 32-bit. */
  readonly digest: number;
}

const PUT_TAG = 0x50; // 'P'
/** Key suffixes: the summary sorts before every user key. */
const SUMMARY_KEY = Uint8Array.of(0x00);
const USER_KEY_TAG = 0x01;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** An entry that stores `value` under `key` (both opaque bytes; the key at most 65535 bytes). */
export const encodePut = (key: Uint8Array, value: Uint8Array): Uint8Array => {
  if (key.length > 0xffff) throw new RangeError('encodePut: key longer than 65535 bytes');
  const out = new Uint8Array(3 + key.length + value.length);
  out[0] = PUT_TAG;
  out[1] = key.length >>> 8;
  out[2] = key.length & 0xff;
  out.set(key, 3);
  out.set(value, 3 + key.length);
  return out;
};

/** The store key suffix of a user key (what `GroupKv` sees). */
export const userKey = (key: Uint8Array): Uint8Array => {
  const out = new Uint8Array(1 + key.length);
  out[0] = USER_KEY_TAG;
  out.set(key, 1);
  return out;
};

/** Inverse of `userKey`; undefined for the summary record. */
export const fromUserKey = (suffix: Uint8Array): Uint8Array | undefined =>
  suffix[0] === USER_KEY_TAG ? suffix.subarray(1) : undefined;

const decodePut = (data: Uint8Array): { key: Uint8Array; value: Uint8Array } | undefined => {
  if (data.length < 3 || data[0] !== PUT_TAG) return undefined;
  const keyLength = ((data[1] as number) << 8) | (data[2] as number);
  if (3 + keyLength > data.length) return undefined;
  return { key: data.subarray(3, 3 + keyLength), value: data.subarray(3 + keyLength) };
};

const foldDigest = (digest: number, data: Uint8Array): number => {
  let hash = digest;
  for (let i = 0; i < data.length; i += 1) {
    hash ^= data[i] as number;
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
};

const encodeSummary = (summary: GroupSummary): Uint8Array => {
  const out = new Uint8Array(12);
  const view = new DataView(out.buffer);
  view.setFloat64(0, summary.count);
  view.setUint32(8, summary.digest);
  return out;
};

const decodeSummary = (bytes: Uint8Array): GroupSummary => {
  if (bytes.length !== 12) throw new Error(`kv-counter: summary record of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { count: view.getFloat64(0), digest: view.getUint32(8) };
};

const EMPTY: GroupSummary = { count: 0, digest: FNV_OFFSET };

export class KvCounterStateMachine implements StateMachine<KvCounterResult> {
  /**
   * The latest summary per group, including applies not yet durable (the host's contract: reads must
   * see this group's earlier writes). Loaded from the store on first use; dropped on snapshot install.
   */
  private readonly summaries = new Map<GroupId, GroupSummary>();
  /** Applied index known durable per group: what a read of the store is guaranteed to reflect. */
  private readonly durable = new Map<GroupId, Index>();

  async apply(
    group: GroupId,
    entries: readonly AppliedEntry[],
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<readonly KvCounterResult[]> {
    let { count, digest } = this.summaries.get(group) ?? (await loadSummary(kv));
    const results: KvCounterResult[] = [];
    for (const entry of entries) {
      count += 1;
      digest = foldDigest(digest, entry.data);
      const put = decodePut(entry.data);
      if (put !== undefined) batch.put(userKey(put.key), put.value);
      results.push({ count });
    }
    const summary = { count, digest };
    this.summaries.set(group, summary);
    batch.put(SUMMARY_KEY, encodeSummary(summary));
    return results;
  }

  persisted(group: GroupId, appliedIndex: Index): void {
    this.durable.set(group, Math.max(this.durable.get(group) ?? 0, appliedIndex));
  }

  restored(group: GroupId, meta: SnapshotMeta): void {
    this.summaries.delete(group);
    // The host calls this after the install write: the store now stands at the snapshot.
    this.durable.set(group, meta.index);
  }

  /** What the host recovered from the store at open (durable by definition); call before it runs. */
  noteRecovered(group: GroupId, appliedIndex: Index): void {
    this.persisted(group, appliedIndex);
  }

  /**
   * The applied index the store reflects at least: read it BEFORE opening an iterator, and the
   * iterator's view includes everything up to it (it may include more).
   */
  durableApplied(group: GroupId): Index {
    return this.durable.get(group) ?? 0;
  }

  /** The group's summary as applied on this node (possibly ahead of what is durable). */
  async summary(group: GroupId, kv: GroupKv): Promise<GroupSummary> {
    return this.summaries.get(group) ?? (await loadSummary(kv));
  }
}

const loadSummary = async (kv: GroupKv): Promise<GroupSummary> => {
  const stored = await kv.get(SUMMARY_KEY);
  return stored === undefined ? EMPTY : decodeSummary(stored);
};
