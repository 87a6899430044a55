// The in-memory Raft log of one group: every retained entry after the compaction point, plus the
// watermarks that say how far it is persisted (stableIndex), committed and applied.
//
// All retained entries live in memory; the host persists them from Ready.entries and acknowledges with
// advance(). A conflicting append from a leader truncates the tail and lowers stableIndex, so the next
// Ready rewrites the replaced suffix.

import { fail, invariant } from './invariant.js';
import type { ConfState, Entry, Index, SnapshotMeta, Term } from './types.js';

export interface LogPosition {
  readonly index: Index;
  readonly term: Term;
}

// Compaction only moves `head`; the array is re-based once the dead prefix dominates it, which keeps
// compaction amortized O(1) per entry instead of copying the retained log on every call. The floor is
// low because the dead prefix still pins its entries' memory: the host compacts half its retained log
// at a time, and that must free it at once (a floor of 1,024 kept ~50% more entries alive per group).
const rebaseHeadMin = 64;

const dataBytes = (entry: Entry): number => entry.data.byteLength;

export class RaftLog {
  private entries: Entry[];
  private head = 0;
  private snapshotMetaValue: SnapshotMeta;
  // Invariant: snapshotIndex <= committed <= lastIndex
  private committedIndex: Index;
  // Invariant: applied <= committed, and applied >= snapshotIndex unless a received snapshot is pending
  private appliedIndex: Index;
  // Invariant: snapshotIndex <= stableIndex <= lastIndex
  private stable: Index;
  // Invariant: stableIndex <= inProgress <= lastIndex. Entries in (stable, inProgress] were handed to
  // the host and are being written (a pipelined write, see acceptInProgress); the next Ready starts
  // after them.
  private inProgress: Index;
  /** A snapshot received from the leader that the host has not yet persisted. */
  private pendingSnapshotMeta: SnapshotMeta | undefined;

  constructor(snapshot: SnapshotMeta, entries: readonly Entry[], committed: Index, applied: Index) {
    this.snapshotMetaValue = snapshot;
    this.entries = [...entries];
    for (let i = 0; i < this.entries.length; i++) {
      const expected = snapshot.index + 1 + i;
      if (this.entries[i]?.index !== expected) fail(`initial entries must be contiguous from ${expected}`);
    }
    this.stable = this.lastIndex();
    this.inProgress = this.stable;
    invariant(applied >= snapshot.index, 'applied must be >= the snapshot index');
    invariant(applied <= committed, 'applied must be <= commit');
    invariant(committed <= this.lastIndex(), 'commit must be <= the last index');
    this.committedIndex = committed;
    this.appliedIndex = applied;
  }

  get committed(): Index {
    return this.committedIndex;
  }

  get applied(): Index {
    return this.appliedIndex;
  }

  get stableIndex(): Index {
    return this.stable;
  }

  get snapshotIndex(): Index {
    return this.snapshotMetaValue.index;
  }

  get pendingSnapshot(): SnapshotMeta | undefined {
    return this.pendingSnapshotMeta;
  }

  /** The compaction point: what a lagging follower must be sent as a snapshot. */
  snapshotMeta(): SnapshotMeta {
    return this.snapshotMetaValue;
  }

  firstIndex(): Index {
    return this.snapshotMetaValue.index + 1;
  }

  lastIndex(): Index {
    return this.snapshotMetaValue.index + this.entries.length - this.head;
  }

  lastTerm(): Term {
    return this.termAt(this.lastIndex()) ?? 0;
  }

  /** The term at `index`, or undefined when it is compacted away or beyond the log. */
  termAt(index: Index): Term | undefined {
    const snapshot = this.snapshotMetaValue;
    if (index === snapshot.index) return snapshot.term;
    if (index < snapshot.index || index > this.lastIndex()) return undefined;
    return this.entryAt(index).term;
  }

  matchTerm(index: Index, term: Term): boolean {
    return this.termAt(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours (later term, or same term and as long). */
  isUpToDate(lastIndex: Index, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** The leader appends its own new entry. */
  appendLeader(entry: Entry): void {
    invariant(entry.index === this.lastIndex() + 1, 'leader entries must extend the log');
    this.entries.push(entry);
  }

  /**
   * A follower receives entries after (prevIndex, prevTerm). Returns the index of the last new entry
   * when the log matched at prevIndex (§5.3 consistency check), else undefined.
   */
  maybeAppend(
    prevIndex: Index,
    prevTerm: Term,
    leaderCommit: Index,
    entries: readonly Entry[],
  ): Index | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNewIndex = prevIndex + entries.length;
    const conflictOffset = this.findConflict(prevIndex, entries);
    if (conflictOffset >= 0) this.truncateAndAppend(entries, conflictOffset);
    // §5.3: commit = min(leaderCommit, index of last new entry): beyond it our log may still diverge.
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  /**
   * Walks back from `index` to the last entry whose term is <= `term` (etcd's fast backtracking): a
   * follower uses it to hint the leader past a whole divergent term at once, and the leader to skip
   * its own entries of terms the follower cannot have. Term 0 means "unknown" (outside our log).
   */
  findConflictByTerm(index: Index, term: Term): LogPosition {
    for (let i = index; i >= this.snapshotMetaValue.index; i--) {
      const ourTerm = this.termAt(i);
      if (ourTerm === undefined) return { index: i, term: 0 };
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
    return { index, term: 0 };
  }

  /**
   * Entries from `low` to the end, at most `bytesMax` of data but always at least one entry.
   * `low` must be after the compaction point.
   */
  slice(low: Index, bytesMax: number): Entry[] {
    const last = this.lastIndex();
    if (low > last) return [];
    invariant(low > this.snapshotMetaValue.index, 'slice below the compaction point');
    const start = this.offsetOf(low);
    let end = start + 1;
    let bytes = dataBytes(this.entries[start] as Entry);
    const endMax = this.entries.length;
    while (end < endMax) {
      const next = bytes + dataBytes(this.entries[end] as Entry);
      if (next > bytesMax) break;
      bytes = next;
      end++;
    }
    return this.entries.slice(start, end);
  }

  /** Sum of data bytes of entries in (low, high] that belong to `term`. */
  bytesOfTermBetween(low: Index, high: Index, term: Term): number {
    let bytes = 0;
    for (let i = Math.max(low, this.snapshotMetaValue.index) + 1; i <= high; i++) {
      const entry = this.entryAt(i);
      if (entry.term === term) bytes += dataBytes(entry);
    }
    return bytes;
  }

  /** Whether (applied, committed] holds a membership change the host has not applied yet. */
  hasUnappliedConf(confKind: Entry['kind']): boolean {
    for (
      let i = Math.max(this.appliedIndex, this.snapshotMetaValue.index) + 1;
      i <= this.committedIndex;
      i++
    ) {
      if (this.entryAt(i).kind === confKind) return true;
    }
    return false;
  }

  /** Entries the host has neither persisted nor started writing. */
  hasUnstable(): boolean {
    return this.inProgress < this.lastIndex();
  }

  /** Entries the host has neither persisted nor started writing: (inProgress, lastIndex]. */
  unstableEntries(): Entry[] {
    if (!this.hasUnstable()) return [];
    return this.entries.slice(this.offsetOf(this.inProgress + 1));
  }

  /**
   * The host took the entries up to `index` into a write that has not completed yet: the next Ready
   * does not hand them out again. They count as persisted only at stableTo.
   */
  acceptInProgress(index: Index): void {
    if (index <= this.inProgress) return;
    if (index > this.lastIndex()) fail(`in-progress ${index} beyond last index ${this.lastIndex()}`);
    this.inProgress = index;
  }

  /** Committed entries are applied only once persisted locally: (applied, min(commit, stableIndex)]. */
  hasNextCommitted(): boolean {
    return this.applyLimit() >= this.applyFrom();
  }

  /** The next batch of entries to apply, bounded by `bytesMax` (at least one entry) and `countMax`. */
  nextCommitted(bytesMax: number, countMax: number): Entry[] {
    const from = this.applyFrom();
    const limit = this.applyLimit();
    if (limit < from) return [];
    const start = this.offsetOf(from);
    const endMax = start + Math.min(limit - from + 1, countMax);
    let end = start + 1;
    let bytes = dataBytes(this.entries[start] as Entry);
    while (end < endMax) {
      bytes += dataBytes(this.entries[end] as Entry);
      if (bytes > bytesMax) break;
      end++;
    }
    return this.entries.slice(start, end);
  }

  commitTo(index: Index): boolean {
    if (index <= this.committedIndex) return false;
    if (index > this.lastIndex()) fail(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committedIndex = index;
    return true;
  }

  appliedTo(index: Index): void {
    if (index <= this.appliedIndex) return;
    if (index > this.committedIndex) fail(`applied ${index} beyond commit ${this.committedIndex}`);
    if (index > this.stable) fail(`applied ${index} beyond the persisted index ${this.stable}`);
    this.appliedIndex = index;
  }

  /**
   * The host persisted entries up to `index` (whose term was `term`). Ignored when the log changed at
   * `index` since (a conflicting append replaced it): the replacement is persisted by a later Ready.
   */
  stableTo(index: Index, term: Term): void {
    if (index <= this.stable || !this.matchTerm(index, term)) return;
    this.stable = index;
    if (this.inProgress < index) this.inProgress = index;
  }

  /** The host persisted the received snapshot: state up to its index is now the applied state. */
  snapshotPersisted(meta: SnapshotMeta): void {
    if (this.pendingSnapshotMeta?.index === meta.index) this.pendingSnapshotMeta = undefined;
    if (meta.index > this.appliedIndex) this.appliedIndex = meta.index;
  }

  /** A follower replaces its whole log by a snapshot from the leader (newer than its commit). */
  restore(meta: SnapshotMeta): void {
    invariant(meta.index > this.committedIndex, 'restoring a snapshot at or below commit');
    this.entries = [];
    this.head = 0;
    this.snapshotMetaValue = meta;
    this.committedIndex = meta.index;
    this.stable = meta.index;
    this.inProgress = meta.index;
    this.pendingSnapshotMeta = meta;
  }

  /** Data bytes of the retained entries in (low, high]; entries compacted away or beyond the log count nothing. */
  dataBytesBetween(low: Index, high: Index): number {
    let bytes = 0;
    const last = Math.min(high, this.lastIndex());
    for (let i = Math.max(low, this.snapshotMetaValue.index) + 1; i <= last; i++)
      bytes += dataBytes(this.entryAt(i));
    return bytes;
  }

  /**
   * The lowest index, at or above the compaction point, whose following entries up to `high` hold at
   * most `bytes` data bytes: compacting to it keeps about that much of the log before `high`.
   */
  indexKeepingBytes(high: Index, bytes: number): Index {
    let index = Math.min(high, this.lastIndex());
    let kept = 0;
    while (index > this.snapshotMetaValue.index) {
      const next = kept + dataBytes(this.entryAt(index));
      if (next > bytes) break;
      kept = next;
      index--;
    }
    return index;
  }

  /** Drops entries up to `index` (already applied and folded into the host's state). */
  compact(index: Index, term: Term, conf: ConfState): void {
    invariant(index <= this.appliedIndex, 'compacting beyond applied');
    invariant(index > this.snapshotMetaValue.index, 'compacting behind the compaction point');
    if (this.termAt(index) !== term) fail(`compaction term ${term} does not match the log at ${index}`);
    this.head += index - this.snapshotMetaValue.index;
    this.snapshotMetaValue = { index, term, conf };
    if (this.head >= rebaseHeadMin && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  private applyFrom(): Index {
    return Math.max(this.appliedIndex, this.snapshotMetaValue.index) + 1;
  }

  private applyLimit(): Index {
    return Math.min(this.committedIndex, this.stable);
  }

  /**
   * Offset in `entries` of the first entry that is missing or has a different term, or -1 when all
   * of them are already in the log (a duplicate or reordered App must not truncate anything).
   */
  private findConflict(prevIndex: Index, entries: readonly Entry[]): number {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i] as Entry;
      invariant(entry.index === prevIndex + 1 + i, 'App entries must be contiguous after prevIndex');
      if (this.termAt(entry.index) !== entry.term) return i;
    }
    return -1;
  }

  private truncateAndAppend(entries: readonly Entry[], fromOffset: number): void {
    const first = (entries[fromOffset] as Entry).index;
    if (first <= this.committedIndex) fail(`conflict at ${first} would overwrite committed entry`);
    this.entries.length = this.head + (first - this.snapshotMetaValue.index - 1);
    for (let i = fromOffset; i < entries.length; i++) this.entries.push(entries[i] as Entry);
    if (this.stable >= first) this.stable = first - 1;
    // A write in flight holds the replaced entries; the new ones go in a later write (stableTo
    // ignores the old write's report: the term at its last index no longer matches).
    if (this.inProgress >= first) this.inProgress = first - 1;
  }

  private offsetOf(index: Index): number {
    return this.head + (index - this.snapshotMetaValue.index - 1);
  }

  private entryAt(index: Index): Entry {
    const entry = this.entries[this.offsetOf(index)];
    if (entry === undefined || entry.index !== index) fail(`no entry at ${index}`);
    return entry;
  }
}
