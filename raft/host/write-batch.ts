// The write batch: the turn's one store write (group commit). It carries every group's Ready of the
// turn, the state-machine writes and applied records produced since the last write (unflushed), the
// log compaction ops queued since then, and the replacement of a group's data by a snapshot it
// received (installs). Synced when any Ready demands it, so one fsync covers every group.

import type { BatchOp, KvStore, RaftHostTimers, StateMachine } from '../api.js';
import { fail } from '../core/invariant.js';
import type { GroupId } from '../core/types.js';
import {
  appliedStateKey,
  groupSpaceKey,
  groupSpacePrefix,
  hardStateKey,
  keyGroup,
  logMetaKey,
  prefixRange,
} from '../storage/keys.js';
import { encodeAppliedState, encodeHardState, encodeSnapshotMeta } from '../storage/record-codec.js';
import {
  installsSnapshot,
  sameTermAndVote,
  type GroupReplica,
  type InstallWork,
  type ReadyWork,
} from './replica.js';
import { failure } from './requests.js';
import type { MutableStats } from './stats.js';
import { emptyWrite, type PendingWrite } from './write-pipeline.js';

export interface PersistOutcome<Result> {
  /** Readys that installed a snapshot in this write. */
  readonly installs: readonly InstallWork<Result>[];
  /** Groups whose applied index became durable with this write. */
  readonly flushed: readonly GroupReplica<Result>[];
}

export interface WriteBatchContext<Result> {
  readonly store: KvStore;
  readonly stateMachine: StateMachine<Result>;
  readonly stats: MutableStats;
  readonly timers: RaftHostTimers | undefined;
}

export class WriteBatch<Result> {
  /** Groups with state-machine writes or an applied record not yet handed to the store. */
  readonly unflushed = new Set<GroupReplica<Result>>();
  /** Log compaction ops (meta and batch deletes) for the start of the next write; never dropped. */
  private logOps: BatchOp[] = [];

  constructor(private readonly context: WriteBatchContext<Result>) {}

  /** Something is waiting for the next write even if no group has a Ready. */
  get hasWork(): boolean {
    return this.unflushed.size > 0 || this.logOps.length > 0;
  }

  /** Where compaction puts its ops: they go first in the next write. */
  get compactionOps(): BatchOp[] {
    return this.logOps;
  }

  /**
   * A forgotten group: its queued writes are dropped. Queued compaction writes of the group must not
   * land after the delete (a stale log meta would be taken for the compaction point of a replica
   * created here later).
   */
  forget(group: GroupId, replica: GroupReplica<Result>): void {
    this.unflushed.delete(replica);
    this.logOps = this.logOps.filter((op) => keyGroup(op.key) !== group);
  }

  /**
   * One store write for every Ready of this turn plus the state-machine writes, applied records
   * and compaction ops produced since the last write. Synced when any Ready demands it.
   *
   * A hard state is written only when its term or vote changed. The commit index is knowledge Raft
   * can always relearn (the paper keeps it volatile), and the applied record already says how far this
   * node's commit reached: recovery takes the larger of the two. That saves one store op per group
   * per turn on every replica.
   */
  async persist(readys: readonly ReadyWork<Result>[]): Promise<PersistOutcome<Result>> {
    const { store, stats, timers } = this.context;
    const installs = readys.filter(installsSnapshot);
    // Writes of earlier applies describe state a snapshot replaces: drop them before collecting.
    for (const { replica } of installs) this.discardUnflushed(replica);
    // Order matters within the batch: older compaction ops first, then applies, then this turn's Readys.
    const write = emptyWrite<Result>();
    this.takeQueued(write);
    for (const item of installs) await this.installOps(item, write.ops);
    this.addReadys(readys, write);
    if (installs.length > 0) write.sync = true;
    if (write.ops.length > 0) {
      const endTimer = write.sync ? timers?.syncedWrite() : undefined;
      await store.write(write.ops, { sync: write.sync });
      endTimer?.();
      stats.storeWrites += 1;
      if (write.sync) stats.syncedWrites += 1;
    }
    return { installs, flushed: this.finish(write) };
  }

  /**
   * Pipelined persistence: the same ops as persist() (never for a Ready that installs a snapshot),
   * added to `write`, the pipeline's queued write; finish() runs once it completed.
   */
  collect(readys: readonly ReadyWork<Result>[], write: PendingWrite<Result>): void {
    this.takeQueued(write);
    this.addReadys(readys, write);
  }

  /** After `write` completed: what it carried is durable. Returns the groups whose applied index is. */
  finish(write: PendingWrite<Result>): GroupReplica<Result>[] {
    for (const { replica, ready } of write.readys) {
      const hardState = ready.hardState;
      if (hardState !== undefined && hardState.term >= replica.durable.term) {
        replica.durable = { term: hardState.term, vote: hardState.vote };
      }
    }
    const flushed: GroupReplica<Result>[] = [];
    for (const [replica, index] of write.flushed) {
      if (index > replica.persistedApplied) {
        replica.logBytes += replica.core.logBytesBetween(replica.persistedApplied, index);
      }
      replica.persistedApplied = Math.max(replica.persistedApplied, index);
      this.context.stateMachine.persisted?.(replica.group, index);
      flushed.push(replica);
    }
    return flushed;
  }

  /** Compaction ops queued since the last write, then the state-machine writes and applied records. */
  private takeQueued(write: PendingWrite<Result>): void {
    for (const op of this.logOps) write.ops.push(op);
    this.logOps = [];
    this.collectUnflushed(write);
  }

  /**
   * Each Ready's entries and (when its term or vote changed) hard state. A hard state is compared with
   * the last one handed to a write, which a write in flight may not have made durable yet.
   */
  private addReadys(readys: readonly ReadyWork<Result>[], write: PendingWrite<Result>): void {
    const { stats } = this.context;
    for (const item of readys) {
      const { replica, ready } = item;
      if (ready.entries.length > 0) {
        replica.log.append(ready.entries, write.ops);
        stats.entriesPersisted += ready.entries.length;
      }
      const hardState = ready.hardState;
      if (hardState !== undefined && !sameTermAndVote(hardState, replica.written)) {
        write.ops.push({ type: 'put', key: hardStateKey(replica.group), value: encodeHardState(hardState) });
        replica.written = { term: hardState.term, vote: hardState.vote };
      }
      if (ready.mustSync) write.sync = true;
      write.readys.push(item);
    }
  }

  /** After the install write: the group now stands at the snapshot; tell the state machine. */
  async finishInstalls(installs: readonly InstallWork<Result>[]): Promise<void> {
    const { stateMachine, stats } = this.context;
    for (const { replica, ready } of installs) {
      const meta = ready.snapshot;
      replica.compaction = meta;
      replica.applied = meta;
      replica.persistedApplied = meta.index;
      replica.confHistory = [];
      replica.logBytes = 0;
      for (const [index, pending] of replica.pending) {
        if (index > meta.index) continue;
        replica.pending.delete(index);
        pending.proposal.request.finish(failure('TIMEOUT', 'outcome unknown: replaced by a snapshot'));
      }
      await stateMachine.restored(replica.group, meta);
      stats.snapshotsReceived += 1;
      replica.inboundSnapshot?.resolve(true);
      replica.inboundSnapshot = undefined;
      replica.resolveReads();
    }
  }

  private discardUnflushed(replica: GroupReplica<Result>): void {
    replica.unflushedOps.length = 0;
    replica.appliedUnflushed = false;
    this.unflushed.delete(replica);
  }

  private collectUnflushed({ ops, flushed }: PendingWrite<Result>): void {
    for (const replica of this.unflushed) {
      for (const op of replica.unflushedOps) ops.push(op);
      replica.unflushedOps.length = 0;
      if (replica.appliedUnflushed) {
        ops.push({
          type: 'put',
          key: appliedStateKey(replica.group),
          value: encodeAppliedState(replica.applied),
        });
        replica.appliedUnflushed = false;
        flushed.push([replica, replica.applied.index]);
      }
    }
    this.unflushed.clear();
  }

  /**
   * Ops that replace a group's whole snapshot space and log with a received snapshot. LevelDB batches
   * have no range delete, so the existing keys are listed first.
   */
  private async installOps({ replica, ready }: InstallWork<Result>, ops: BatchOp[]): Promise<void> {
    const inbound = replica.inboundSnapshot;
    const meta = ready.snapshot;
    if (inbound === undefined || inbound.message.snapshot?.index !== meta.index) {
      fail(`group ${replica.group}: Ready carries a snapshot at ${meta.index} the host did not step`);
    }
    for await (const [key] of this.context.store.iterate(prefixRange(groupSpacePrefix(replica.group)))) {
      ops.push({ type: 'del', key });
    }
    replica.log.clear(ops);
    for (const [relative, value] of inbound.pairs) {
      ops.push({ type: 'put', key: groupSpaceKey(replica.group, relative), value });
    }
    ops.push({ type: 'put', key: logMetaKey(replica.group), value: encodeSnapshotMeta(meta) });
    ops.push({ type: 'put', key: appliedStateKey(replica.group), value: encodeAppliedState(meta) });
  }
}
