// Reads a group's Raft log straight off a node's simulated disk with the host's own storage codecs, so
// the log checkers see what the node persisted (or is persisting) without any help from the host.

import type { Entry, GroupId, Index, SnapshotMeta, Term } from '../../../raft/core/types.js';
import { recoverGroupLog } from '../../../raft/storage/group-log.js';
import { groupLogRange, logBatchFirstIndex, logMetaKey } from '../../../raft/storage/keys.js';
import { decodeSnapshotMeta } from '../../../raft/storage/record-codec.js';
import type { LogView } from './checkers.js';
import type { SimDisk } from './sim-store.js';

const EMPTY_COMPACTION: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };

class StoredLog implements LogView {
  constructor(
    private readonly compaction: SnapshotMeta,
    private readonly entries: readonly Entry[],
  ) {}

  get firstIndex(): Index {
    return this.compaction.index + 1;
  }

  get lastIndex(): Index {
    return this.entries.at(-1)?.index ?? this.compaction.index;
  }

  termAt(index: Index): Term | undefined {
    if (index === this.compaction.index) return this.compaction.term;
    return this.entries[index - this.firstIndex]?.term;
  }
}

/** The log of `group` as the disk's current (not necessarily durable) contents hold it. */
export const readDiskLog = (disk: SimDisk, group: GroupId): LogView => {
  const metaValue = disk.read(logMetaKey(group));
  const compaction = metaValue === undefined ? EMPTY_COMPACTION : decodeSnapshotMeta(metaValue);
  const batches = disk
    .scan(groupLogRange(group))
    .map(([key, value]) => [logBatchFirstIndex(key), value] as const);
  return new StoredLog(compaction, recoverGroupLog(group, batches, compaction).entries);
};

/** Caches each group's log per disk version: decoding is only redone after the disk changed. */
export class DiskLogCache {
  private readonly cache = new Map<GroupId, { readonly version: number; readonly log: LogView }>();

  constructor(private readonly disk: SimDisk) {}

  logOf(group: GroupId): LogView {
    const cached = this.cache.get(group);
    if (cached?.version === this.disk.version) return cached.log;
    const log = readDiskLog(this.disk, group);
    this.cache.set(group, { version: this.disk.version, log });
    return log;
  }
}
