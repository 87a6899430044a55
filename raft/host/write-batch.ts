// The write batch: the turn's one store write (group commit). It carries every group's Ready of the
// turn, the state-machine writes and applied records produced since the last write (unflushed), the
// log compaction ops queued since then, and the replacement of a group's data by a snapshot it
// received (installs). Synced when any Ready demands it, so one fsync covers every group.

import type { BatchOp, KvStore, RaftHostTimers, StateMachine } from '../api.js';
import { fail } from '../core/invariant.js';
import type { GroupId, Index } from '../core/types.js';
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
    const { store, stats, timers, stateMachine } = this.context;
    const installs = readys.filter(installsSnapshot);
    // Writes of earlier applies describe state a snapshot replaces: drop them before collecting.
    for (const { replica } of installs) this.discardUnflushed(replica);
    // Order matters within the batch: older compaction ops first, then applies, then this turn's Readys.
    const ops = this.logOps;
    this.logOps = [];
    const flushed = this.collectUnflushed(ops);
    for (const item of installs) await this.installOps(item, ops);
    let sync = installs.length > 0;
    for (const { replica, ready } of readys) {
      if (ready.entries.length > 0) {
        replica.log.append(ready.entries, ops);
        stats.entriesPersisted += ready.entries.length;
      }
      const hardState = ready.hardState;
      if (hardState !== undefined && !sameTermAndVote(hardState, replica.durable)) {
        ops.push({ type: 'put', key: hardStateKey(replica.group), value: encodeHardState(hardState) });
      }
      if (ready.mustSync) sync = true;
    }
    if (ops.length > 0) {
      const endTimer = sync ? timers?.syncedWrite() : undefined;
      await store.write(ops, { sync });
      endTimer?.();
      stats.storeWrites += 1;
      if (sync) stats.syncedWrites += 1;
    }
    for (const { replica, ready } of readys) {
      const hardState = ready.hardState;
      if (hardState !== undefined) replica.durable = { term: hardState.term, vote: hardState.vote };
    }
    for (const [replica, index] of flushed) {
      if (index > replica.persistedApplied) {
        replica.logBytes += replica.core.logBytesBetween(replica.persistedApplied, index);
      }
      replica.persistedApplied = Math.max(replica.persistedApplied, index);
      stateMachine.persisted?.(replica.group, index);
    }
    return { installs, flushed: flushed.map(([replica]) => replica) };
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

  private collectUnflushed(ops: BatchOp[]): [GroupReplica<Result>, Index][] {
    const flushed: [GroupReplica<Result>, Index][] = [];
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
    return flushed;
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
