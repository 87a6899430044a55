// A bounded least-recently-used map. A Map iterates in insertion order, so re-inserting on access
// keeps the least recently used entry first, where eviction finds it in O(1).
//
// Two bounds, whichever is reached first: a number of entries, and optionally a total weight (an
// estimate of the bytes the values hold). The weight bound is what makes memory a function of the
// configuration even when values differ in size (context metadata runs from nothing to 64 KiB).

export interface LruWeight<K, V> {
  /** Largest total weight kept; older entries are evicted past it. */
  readonly max: number;
  /** The weight of one entry; called once per set, so it should be cheap. */
  readonly weigh: (value: V, key: K) => number;
}

interface Slot<V> {
  readonly value: V;
  readonly weight: number;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, Slot<V>>();
  private totalWeight = 0;

  constructor(
    readonly capacity: number,
    private readonly weightLimit?: LruWeight<K, V>,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity ${capacity}`);
    if (weightLimit !== undefined && !(weightLimit.max > 0)) {
      throw new RangeError(`LRU weight limit ${weightLimit.max}`);
    }
  }

  get(key: K): V | undefined {
    const slot = this.entries.get(key);
    if (slot !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, slot);
    }
    return slot?.value;
  }

  /** Caches `value` as the most recent entry; a value heavier than the whole limit is not kept. */
  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.weightLimit?.weigh(value, key) ?? 0;
    this.entries.set(key, { value, weight });
    this.totalWeight += weight;
    const maxWeight = this.weightLimit?.max ?? Infinity;
    while (this.entries.size > this.capacity || this.totalWeight > maxWeight) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const slot = this.entries.get(key);
    if (slot === undefined) return;
    this.entries.delete(key);
    this.totalWeight -= slot.weight;
  }

  deleteWhere(predicate: (value: V) => boolean): void {
    for (const [key, slot] of this.entries) if (predicate(slot.value)) this.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The summed weight of the cached values (0 without a weight limit). */
  get weight(): number {
    return this.totalWeight;
  }
}
