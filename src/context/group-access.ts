// Reads of one group's state-machine space that see applied-but-not-durable writes (DirtyOverlay)
// over the durable store (GroupKv), and the write set of one command being applied.

import type { GroupKv, GroupWriteBatch } from '../../raft/index.js';
import type { DirtyOverlay, DirtyWrite } from './dirty-overlay.js';
import { keyString } from './keys.js';

export type KeyValue = readonly [Uint8Array, Uint8Array];

/** A page of a key range read under a byte budget. */
export interface BudgetedScan {
  /** In key order. */
  readonly pairs: KeyValue[];
  /** False when the budget stopped the read before the end of the range (the start, when reversed). */
  readonly complete: boolean;
}

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

  /**
   * Pairs with `gte <= key <= lte`, read from the low end (or the high end, `fromHigh`) while their
   * values add up to at most `bytesMax`, and always at least one: what a page of a read may hold, so
   * a range of huge values is never loaded whole. Returned in key order either way.
   */
  async scanWithin(
    gte: Uint8Array,
    lte: Uint8Array,
    bytesMax: number,
    fromHigh = false,
  ): Promise<BudgetedScan> {
    // Overlay first, store view second (as in scan), merged as the store's pairs stream in, so the
    // budget counts exactly what the answer holds.
    const dirty = this.overlay
      .inRange(this.group, gte, lte)
      .map((write) => ({ name: keyString(write.key), write }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (fromHigh) dirty.reverse();
    const comesFirst = (a: string, b: string): boolean => (fromHigh ? a > b : a < b);
    const pairs: KeyValue[] = [];
    let bytes = 0;
    const take = (pair: KeyValue): boolean => {
      if (pairs.length > 0 && bytes + pair[1].byteLength > bytesMax) return false;
      pairs.push(pair);
      bytes += pair[1].byteLength;
      return true;
    };
    const takeDirty = (write: DirtyWrite): boolean => write.value === null || take([write.key, write.value]);
    const page = (complete: boolean): BudgetedScan => ({
      pairs: fromHigh ? pairs.reverse() : pairs,
      complete,
    });
    let next = 0;
    try {
      for await (const [key, value] of this.kv.iterate({ gte, lte, reverse: fromHigh })) {
        const name = keyString(key);
        for (
          let pending = dirty[next];
          pending !== undefined && comesFirst(pending.name, name);
          pending = dirty[next]
        ) {
          next += 1;
          if (!takeDirty(pending.write)) return page(false);
        }
        const same = dirty[next];
        if (same !== undefined && same.name === name) {
          next += 1;
          if (!takeDirty(same.write)) return page(false);
        } else if (!take([key, value])) return page(false);
      }
    } catch (error) {
      throw storeRead(error);
    }
    for (; next < dirty.length; next++) {
      const pending = dirty[next];
      if (pending !== undefined && !takeDirty(pending.write)) return page(false);
    }
    return page(true);
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
