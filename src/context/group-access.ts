// Reads of one group's state-machine space that see applied-but-not-durable writes (DirtyOverlay)
// over the durable store (GroupKv), and the write set of one command being applied.

import type { GroupKv, GroupWriteBatch } from '../../raft/api.js';
import type { DirtyOverlay, DirtyWrite } from './dirty-overlay.js';
import { keyString } from './keys.js';

export type KeyValue = readonly [Uint8Array, Uint8Array];

/**
 * The store failed a read. It says nothing about the entry being applied, and other replicas read
 * their own stores: the state machine must let it fail the apply (fatal), never answer the entry
 * with an error result that the other replicas would not give.
 */
export class StoreReadError extends Error {
  override readonly name = 'StoreReadError';
}

const storeRead = (error: unknown): StoreReadError =>
  new StoreReadError(`store read failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });

export class GroupReader {
  constructor(
    protected readonly overlay: DirtyOverlay,
    readonly group: number,
    protected readonly kv: GroupKv,
  ) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const dirty = this.overlay.get(this.group, key);
    if (dirty !== undefined) return dirty ?? undefined;
    try {
      return await this.kv.get(key);
    } catch (error) {
      throw storeRead(error);
    }
  }

  /** Pairs with `gte <= key <= lte`, in key order. */
  async scan(gte: Uint8Array, lte: Uint8Array): Promise<KeyValue[]> {
    // Overlay first, store view second: a write persisted (and dropped from the overlay) between
    // the two is then in the store's view; taken the other way round it could be in neither.
    const dirty = this.overlay.inRange(this.group, gte, lte);
    const durable: KeyValue[] = [];
    try {
      for await (const pair of this.kv.iterate({ gte, lte })) durable.push(pair);
    } catch (error) {
      throw storeRead(error);
    }
    return dirty.length === 0 ? durable : mergeDirty(durable, dirty);
  }
}

const mergeDirty = (durable: readonly KeyValue[], dirty: readonly DirtyWrite[]): KeyValue[] => {
  const merged = new Map<string, Uint8Array | null>();
  const keys = new Map<string, Uint8Array>();
  for (const [key, value] of durable) {
    const name = keyString(key);
    merged.set(name, value);
    keys.set(name, key);
  }
  for (const write of dirty) {
    const name = keyString(write.key);
    merged.set(name, write.value);
    keys.set(name, write.key);
  }
  const names = [...merged.keys()].sort();
  const pairs: KeyValue[] = [];
  for (const name of names) {
    const value = merged.get(name);
    const key = keys.get(name);
    if (value !== null && value !== undefined && key !== undefined) pairs.push([key, value]);
  }
  return pairs;
};

/** One command's writes: visible to its own reads at once, to everyone else once committed. */
export class ApplyTx extends GroupReader {
  private readonly writes = new Map<string, DirtyWrite>();

  override async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const staged = this.writes.get(keyString(key));
    if (staged !== undefined) return staged.value ?? undefined;
    return super.get(key);
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(keyString(key), { key, value });
  }

  del(key: Uint8Array): void {
    this.writes.set(keyString(key), { key, value: null });
  }

  /** Hands the writes to the host's batch and to the overlay, as applied at `index`. */
  commit(index: number, batch: GroupWriteBatch): void {
    for (const write of this.writes.values()) {
      if (write.value === null) batch.del(write.key);
      else batch.put(write.key, write.value);
    }
    this.overlay.record(this.group, index, this.writes);
  }
}
