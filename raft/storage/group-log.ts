// One group's stored log as an in-memory index of its packed batches, so appends that overwrite a
// suffix, compaction and snapshot installs know which keys to delete without reading the store on the
// hot path. Recovery rebuilds the index (and the entries) from the batches in key order.

import type { BatchOp } from '../api.js';
import type { Entry, GroupId, Index, SnapshotMeta } from '../core/types.js';
import { StorageCorruptionError } from './checksum-frame.js';
import { decodeLogBatch, encodeLogBatch } from './log-codec.js';
import { logBatchKey } from './keys.js';

interface BatchSpan {
  readonly firstIndex: Index;
  /** The last index this batch still stands for: a later overwrite may have cut its tail logically. */
  lastIndex: Index;
}

export class GroupLogIndex {
  // Invariant: spans are sorted by firstIndex, do not overlap, and each is non-empty (first <= last).
  private spans: BatchSpan[] = [];

  constructor(readonly group: GroupId) {}

  lastIndex(): Index | undefined {
    return this.spans.at(-1)?.lastIndex;
  }

  batchCount(): number {
    return this.spans.length;
  }

  /**
   * Ops that append `entries` as one packed batch. When they start at or below the stored last index,
   * every batch starting at or after them is deleted in the same write; a batch straddling the start
   * stays (its tail is cut logically: recovery lets the later batch truncate it).
   */
  append(entries: readonly Entry[], ops: BatchOp[]): void {
    const first = entries[0];
    const last = entries.at(-1);
    if (first === undefined || last === undefined) return;
    this.cutFrom(first.index, ops);
    ops.push({ type: 'put', key: logBatchKey(this.group, first.index), value: encodeLogBatch(entries) });
    this.spans.push({ firstIndex: first.index, lastIndex: last.index });
  }

  /** Ops that delete every batch wholly at or below the compaction point `index`. */
  compact(index: Index, ops: BatchOp[]): void {
    let dropped = 0;
    for (const span of this.spans) {
      if (span.lastIndex > index) break;
      ops.push({ type: 'del', key: logBatchKey(this.group, span.firstIndex) });
      dropped += 1;
    }
    if (dropped > 0) this.spans.splice(0, dropped);
  }

  /** Ops that delete the whole stored log (a snapshot replaces it). */
  clear(ops: BatchOp[]): void {
    this.compact(Number.MAX_SAFE_INTEGER, ops);
  }

  /** Used by recovery: registers a batch already in the store (it replaced any tail from its start). */
  restoreSpan(firstIndex: Index, lastIndex: Index): void {
    this.cutFrom(firstIndex, undefined);
    this.spans.push({ firstIndex, lastIndex });
  }

  /** Forgets (and with `ops`, deletes) every batch starting at or after `index`; cuts a straddling one. */
  private cutFrom(index: Index, ops: BatchOp[] | undefined): void {
    for (
      let tail = this.spans.at(-1);
      tail !== undefined && tail.lastIndex >= index;
      tail = this.spans.at(-1)
    ) {
      if (tail.firstIndex < index) {
        tail.lastIndex = index - 1;
        return;
      }
      ops?.push({ type: 'del', key: logBatchKey(this.group, tail.firstIndex) });
      this.spans.pop();
    }
  }
}

export interface RecoveredLog {
  /** Entries after the compaction point, contiguous. */
  readonly entries: Entry[];
  readonly index: GroupLogIndex;
}

/**
 * Rebuilds a group's log from its stored batches, given in key order (= write order among survivors,
 * since writing a batch deletes every batch keyed at or after it). A batch that starts inside the loaded
 * tail replaced that tail; entries at or below the compaction point are dropped.
 */
export const recoverGroupLog = (
  group: GroupId,
  batches: Iterable<readonly [Index, Uint8Array]>,
  compaction: SnapshotMeta,
): RecoveredLog => {
  const index = new GroupLogIndex(group);
  let entries: Entry[] = [];
  for (const [firstIndex, value] of batches) {
    const batch = decodeLogBatch(firstIndex, value);
    const loadedFirst = entries[0]?.index ?? firstIndex;
    const loadedLast = entries.at(-1)?.index ?? firstIndex - 1;
    // A gap is harmless when everything before it is compacted away anyway; above that it is data loss.
    if (firstIndex > loadedLast + 1 && firstIndex > compaction.index + 1) {
      throw new StorageCorruptionError(`group ${group}: log gap between ${loadedLast} and ${firstIndex}`);
    }
    if (firstIndex <= loadedFirst || firstIndex > loadedLast + 1) entries = [];
    else entries.length = firstIndex - loadedFirst;
    for (const entry of batch) entries.push(entry);
    index.restoreSpan(firstIndex, firstIndex + batch.length - 1);
  }
  const firstKept = entries.findIndex((entry) => entry.index > compaction.index);
  const kept = firstKept < 0 ? [] : entries.slice(firstKept);
  const head = kept[0];
  if (head !== undefined && head.index !== compaction.index + 1) {
    throw new StorageCorruptionError(
      `group ${group}: log starts at ${head.index} after compaction ${compaction.index}`,
    );
  }
  return { entries: kept, index };
};
