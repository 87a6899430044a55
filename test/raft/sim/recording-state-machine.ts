// A state machine that records what it applies: every entry becomes a record (index, term, data) at the
// next sequence number of its group, written through the host's GroupWriteBatch so the record survives
// a crash exactly as far as the applied index does. Comparing records across replicas checks that they
// applied identical prefixes; a record seen twice, or lost, shows up as a gap or a mismatch.

import type { AppliedEntry, GroupKv, GroupWriteBatch, StateMachine } from '../../../raft/api.js';
import type { GroupId, Index, SnapshotMeta, Term } from '../../../raft/core/types.js';

export interface AppliedRecord {
  readonly index: Index;
  readonly term: Term;
  readonly data: Uint8Array;
}

/** What `apply` returns per entry, handed to the proposer: derived from the entry, so it can be checked. */
export interface RecordResult {
  readonly seq: number;
  readonly index: Index;
  readonly proposalId: string | null;
}

export type RecordEvent =
  | {
      readonly kind: 'applied';
      readonly group: GroupId;
      readonly firstSeq: number;
      readonly records: readonly AppliedRecord[];
    }
  | { readonly kind: 'restored'; readonly group: GroupId; readonly meta: SnapshotMeta };

// ---------------------------------------------------------------------------------------------
// Proposal payloads: a recognisable prefix and a unique id, so no-ops and conf entries are told apart.

const PROPOSAL_PREFIX = 'sim:';

export const encodeProposal = (proposalId: string): Uint8Array =>
  new TextEncoder().encode(`${PROPOSAL_PREFIX}${proposalId}`);

export const proposalIdOf = (data: Uint8Array): string | null => {
  const text = new TextDecoder().decode(data);
  return text.startsWith(PROPOSAL_PREFIX) ? text.slice(PROPOSAL_PREFIX.length) : null;
};

// ---------------------------------------------------------------------------------------------
// Key space (suffixes inside the group's state-machine space).

const COUNT_KEY = Uint8Array.of(0);
const RECORD_TAG = 1;

const recordKey = (seq: number): Uint8Array => {
  const key = Buffer.alloc(5);
  key.writeUInt8(RECORD_TAG, 0);
  key.writeUInt32BE(seq, 1);
  return key;
};

const encodeCount = (count: number): Uint8Array => {
  const value = Buffer.alloc(4);
  value.writeUInt32BE(count, 0);
  return value;
};

const decodeCount = (value: Uint8Array | undefined): number =>
  value === undefined ? 0 : Buffer.from(value).readUInt32BE(0);

const encodeRecord = (record: AppliedRecord): Uint8Array => {
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(BigInt(record.index), 0);
  header.writeBigUInt64BE(BigInt(record.term), 8);
  return Buffer.concat([header, record.data]);
};

const decodeRecord = (value: Uint8Array): AppliedRecord => {
  const bytes = Buffer.from(value);
  return {
    index: Number(bytes.readBigUInt64BE(0)),
    term: Number(bytes.readBigUInt64BE(8)),
    data: Uint8Array.from(bytes.subarray(16)),
  };
};

/** Every record of a group, in sequence order, as its key space holds them now. */
export const readRecords = async (kv: GroupKv): Promise<AppliedRecord[]> => {
  const count = decodeCount(await kv.get(COUNT_KEY));
  const records: AppliedRecord[] = [];
  for await (const [, value] of kv.iterate({ gte: recordKey(0), lt: Uint8Array.of(RECORD_TAG + 1) })) {
    records.push(decodeRecord(value));
  }
  if (records.length !== count) {
    throw new Error(`group key space holds ${records.length} records but its count says ${count}`);
  }
  return records;
};

// ---------------------------------------------------------------------------------------------

export class RecordingStateMachine implements StateMachine<RecordResult> {
  /**
   * Record count per group, cached because the writes of an apply are not readable until the host
   * persists them. Dropped when a snapshot replaces the group's space.
   */
  private readonly counts = new Map<GroupId, number>();

  constructor(private readonly onEvent: (event: RecordEvent) => void) {}

  async apply(
    group: GroupId,
    entries: readonly AppliedEntry[],
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<readonly RecordResult[]> {
    const firstSeq = this.counts.get(group) ?? decodeCount(await kv.get(COUNT_KEY));
    const records = entries.map((entry) => ({
      index: entry.index,
      term: entry.term,
      data: Uint8Array.from(entry.data),
    }));
    records.forEach((record, offset) => batch.put(recordKey(firstSeq + offset), encodeRecord(record)));
    const nextSeq = firstSeq + records.length;
    batch.put(COUNT_KEY, encodeCount(nextSeq));
    this.counts.set(group, nextSeq);
    this.onEvent({ kind: 'applied', group, firstSeq, records });
    return records.map((record, offset) => ({
      seq: firstSeq + offset,
      index: record.index,
      proposalId: proposalIdOf(record.data),
    }));
  }

  restored(group: GroupId, meta: SnapshotMeta): void {
    this.counts.delete(group);
    this.onEvent({ kind: 'restored', group, meta });
  }
}
