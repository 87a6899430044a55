// The simulated disk of one node, modelled on LevelDB: writes are atomic and complete in the order they
// were issued; an unsynced write completes (becomes visible, resolves) as soon as the writes before it
// have, a synced one only when the simulator completes its fsync, which also makes every write before
// it durable. A crash keeps only durable writes. Each incarnation of the node's host gets its own
// `SimStore` handle; a crash kills the handle, so the abandoned host's outstanding writes never resolve.

import type { BatchOp, KeyRange, KvStore } from '../../../raft/api.js';
import { SortedKv, type KvPair } from './sorted-kv.js';

export interface SimDiskOptions {
  /**
   * The broken rule: acknowledge synced writes without waiting for fsync (a disk that lies about it).
   * Such writes become durable only when the OS writes its cache back, so a crash can lose data the
   * host was told is on disk.
   */
  readonly lieAboutFsync?: boolean;
}

interface QueuedWrite {
  readonly ops: readonly BatchOp[];
  readonly sync: boolean;
  readonly resolve: () => void;
}

export class SimDisk {
  /** What survives a crash. */
  private durable = new SortedKv();
  /** What reads see: `durable` plus every completed write not yet durable. */
  private visible = new SortedKv();
  /** Writes issued but not completed, in issue order; the head is a synced write waiting on fsync. */
  private waiting: QueuedWrite[] = [];
  // Invariant: `visible` equals `durable` with every write in `unsynced` applied in order.
  private unsynced: (readonly BatchOp[])[] = [];
  private current: SimStore | undefined;
  private readonly lieAboutFsync: boolean;
  /** Bumped by every change to the visible view, so readers can cache what they derive from it. */
  private versionCounter = 0;

  constructor(options: SimDiskOptions = {}) {
    this.lieAboutFsync = options.lieAboutFsync === true;
  }

  /** A handle for a new incarnation of the node. The previous one must have crashed or closed. */
  open(): SimStore {
    if (this.current !== undefined && this.current.isOpen) {
      throw new Error('SimDisk.open while a handle is still open: crash or close it first');
    }
    this.current = new SimStore(this);
    return this.current;
  }

  /** Power loss: forget every write not yet durable, and freeze the current handle forever. */
  crash(): void {
    this.current?.kill();
    this.current = undefined;
    this.waiting = [];
    this.unsynced = [];
    this.visible = this.durable.clone();
    this.versionCounter += 1;
  }

  get version(): number {
    return this.versionCounter;
  }

  /** Writes not yet durable, completed or not: what `completeFsync` can make progress on. */
  get pendingWriteCount(): number {
    return this.waiting.length + this.unsynced.length;
  }

  /** Synced writes still waiting for their fsync. */
  get pendingSyncCount(): number {
    return this.waiting.length;
  }

  /**
   * The fsync at the head of the queue completes: that write and every completed write before it become
   * durable, its promise resolves, and unsynced writes queued behind it complete. With no synced write
   * waiting, the completed writes are flushed (the OS writing back its cache). False if nothing pended.
   */
  completeFsync(): boolean {
    const head = this.waiting.shift();
    if (head !== undefined) {
      this.complete(head);
      this.completeUnsyncedHeads();
      return true;
    }
    if (this.unsynced.length === 0) return false;
    this.flushUnsynced();
    return true;
  }

  /** Make everything durable (used when healing for the liveness phase). */
  completeAllFsyncs(): void {
    while (this.completeFsync()) {
      // Each call completes or flushes at least one write, so this ends.
    }
  }

  /** Every durable pair, for tests and post-mortems. */
  durablePairs(): KvPair[] {
    return this.durable.range({});
  }

  /** @internal The live handle's write. */
  write(ops: readonly BatchOp[], sync: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      // A lying disk treats a synced write like an unsynced one: acknowledged without an fsync.
      this.waiting.push({ ops, sync: sync && !this.lieAboutFsync, resolve });
      this.completeUnsyncedHeads();
    });
  }

  /** What a read sees now: completed writes, durable or not. */
  read(key: Uint8Array): Buffer | undefined {
    return this.visible.get(key);
  }

  /** A point-in-time copy of `range` of what reads see now. */
  scan(range: KeyRange): KvPair[] {
    return this.visible.range(range);
  }

  /** Writes complete in order: unsynced writes at the head of the queue complete at once. */
  private completeUnsyncedHeads(): void {
    while (this.waiting[0]?.sync === false) this.complete(this.waiting.shift() as QueuedWrite);
  }

  private flushUnsynced(): void {
    for (const ops of this.unsynced) applyOps(this.durable, ops);
    this.unsynced = [];
  }

  private complete(write: QueuedWrite): void {
    applyOps(this.visible, write.ops);
    this.versionCounter += 1;
    if (write.sync) {
      this.flushUnsynced();
      applyOps(this.durable, write.ops);
    } else {
      this.unsynced.push(write.ops);
    }
    write.resolve();
  }
}

const applyOps = (kv: SortedKv, ops: readonly BatchOp[]): void => {
  for (const op of ops) {
    if (op.type === 'put') kv.put(op.key, op.value);
    else kv.del(op.key);
  }
};

/** A promise that never settles: what a dead process's I/O looks like from inside the process. */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** One incarnation's view of a `SimDisk`, handed to `RaftHost.open` as its `KvStore`. */
export class SimStore implements KvStore {
  private state: 'open' | 'closed' | 'dead' = 'open';

  constructor(private readonly disk: SimDisk) {}

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** @internal Called by the disk on a crash. */
  kill(): void {
    this.state = 'dead';
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.state === 'dead') return never();
    this.assertOpen();
    const value = this.disk.read(key);
    return value === undefined ? undefined : Uint8Array.from(value);
  }

  async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
    if (this.state === 'dead') return never();
    this.assertOpen();
    return this.disk.write(copyOps(ops), options.sync);
  }

  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    if (this.state === 'dead') return { [Symbol.asyncIterator]: () => ({ next: never }) };
    this.assertOpen();
    // The view is taken now, as the KvStore contract requires, not when iteration starts.
    const pairs = this.disk.scan(range);
    return iteratePairs(pairs, () => this.state === 'dead');
  }

  async close(): Promise<void> {
    if (this.state === 'open') this.state = 'closed';
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new Error('SimStore used after close');
  }
}

async function* iteratePairs(
  pairs: readonly KvPair[],
  isDead: () => boolean,
): AsyncGenerator<readonly [Uint8Array, Uint8Array]> {
  for (const [key, value] of pairs) {
    if (isDead()) await never();
    yield [Uint8Array.from(key), Uint8Array.from(value)];
  }
}

// Copied at the call, so a caller reusing its buffers cannot change what was written.
const copyOps = (ops: readonly BatchOp[]): BatchOp[] =>
  ops.map((op) =>
    op.type === 'put'
      ? { type: 'put', key: Uint8Array.from(op.key), value: Uint8Array.from(op.value) }
      : { type: 'del', key: Uint8Array.from(op.key) },
  );
