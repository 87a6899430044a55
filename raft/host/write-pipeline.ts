// The write pipeline (pipelined persistence): a turn hands its store write here and ends without
// waiting for the fsync, so the next turn can step, send and apply while the disk works. Writes reach
// the store one at a time, in turn order: LevelDB runs concurrent writes on different threads, which
// may reach its log in either order, and a later write (a truncated suffix, a newer term or vote) must
// never land before an earlier one. Turns that end while a write is in flight merge their ops into the
// one queued write behind it, so a slow fsync makes the next write larger, not later.
//
// A finished write is only recorded here; the next turn takes it (takeCompleted) and tells the cores,
// releases the messages that waited for it and counts what became durable (RaftHost.finishWrites).
// This is etcd raft's asynchronous storage writes (MsgStorageAppend and its response) and TiKV's async
// write pool, in the host: the core's accept() and persisted() are the two halves of advance().

import type { BatchOp, KvStore, RaftHostTimers } from '../api.js';
import type { GroupReplica, ReadyWork } from './replica.js';
import type { MutableStats } from './stats.js';

/** One store write and what becomes durable with it. */
export interface PendingWrite<Result> {
  readonly ops: BatchOp[];
  sync: boolean;
  /** The Readys whose entries, hard state and held messages wait for this write, in turn order. */
  readonly readys: ReadyWork<Result>[];
  /** Groups whose applied record this write carries, with the applied index it records. */
  readonly flushed: [GroupReplica<Result>, number][];
}

export interface WritePipelineContext {
  readonly store: KvStore;
  readonly stats: MutableStats;
  readonly timers: RaftHostTimers | undefined;
  /** A write completed: a turn should take it. */
  readonly wake: () => void;
  /** A write failed: the host must stop (it never retries a write in place). */
  readonly fatal: (error: unknown) => void;
}

export const emptyWrite = <Result>(): PendingWrite<Result> => ({
  ops: [],
  sync: false,
  readys: [],
  flushed: [],
});

export class WritePipeline<Result> {
  /** Where this turn's ops go: behind the write in flight, merged with other turns that waited. */
  private queued: PendingWrite<Result> | undefined;
  private inFlight: PendingWrite<Result> | undefined;
  private completed: PendingWrite<Result>[] = [];
  private idleWaiters: (() => void)[] = [];
  private failed = false;

  constructor(private readonly context: WritePipelineContext) {}

  /** The write this turn's ops join; issue it with submit(). */
  next(): PendingWrite<Result> {
    this.queued ??= emptyWrite();
    return this.queued;
  }

  /** Issues the queued write unless one is in flight (then it follows when that one completes). */
  submit(): void {
    if (this.inFlight !== undefined || this.queued === undefined || this.failed) return;
    const write = this.queued;
    this.queued = undefined;
    this.inFlight = write;
    if (write.ops.length === 0) {
      // Nothing to write, but its Readys' messages still wait for the writes before it: done now.
      this.complete(write);
      return;
    }
    const { store, stats, timers } = this.context;
    const endTimer = write.sync ? timers?.syncedWrite() : undefined;
    store.write(write.ops, { sync: write.sync }).then(
      () => {
        endTimer?.();
        stats.storeWrites += 1;
        if (write.sync) stats.syncedWrites += 1;
        this.complete(write);
      },
      (error: unknown) => {
        this.failed = true;
        this.releaseIdleWaiters();
        this.context.fatal(error);
      },
    );
  }

  /** Completed writes not yet taken by a turn. */
  get hasCompleted(): boolean {
    return this.completed.length > 0;
  }

  /** A write is in flight or queued. */
  get busy(): boolean {
    return this.inFlight !== undefined || this.queued !== undefined;
  }

  /** The completed writes, oldest first; the caller finishes them in that order. */
  takeCompleted(): PendingWrite<Result>[] {
    const done = this.completed;
    this.completed = [];
    return done;
  }

  /** Resolves once no write is in flight or queued (or the pipeline failed). */
  idle(): Promise<void> {
    this.submit();
    if (!this.busy || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private complete(write: PendingWrite<Result>): void {
    this.inFlight = undefined;
    this.completed.push(write);
    this.submit();
    if (!this.busy) this.releaseIdleWaiters();
    this.context.wake();
  }

  private releaseIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
