// An in-memory ordered map of binary keys (Buffer.compare order, as LevelDB's default comparator),
// the building block of the simulated disk. Keys and values are copied in, so callers cannot alias them.

import type { KeyRange } from '../../../raft/api.js';

export type KvPair = readonly [Buffer, Buffer];

export class SortedKv {
  // Invariant: strictly ascending by Buffer.compare of the keys.
  private pairs: KvPair[] = [];

  get size(): number {
    return this.pairs.length;
  }

  get(key: Uint8Array): Buffer | undefined {
    const at = this.search(key);
    return at.found ? this.pairs[at.index]?.[1] : undefined;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const pair: KvPair = [Buffer.from(key), Buffer.from(value)];
    const at = this.search(key);
    this.pairs.splice(at.index, at.found ? 1 : 0, pair);
  }

  del(key: Uint8Array): void {
    const at = this.search(key);
    if (at.found) this.pairs.splice(at.index, 1);
  }

  /** The pairs in `range`, in the order and up to the limit it asks for. The array is a copy. */
  range(range: KeyRange): KvPair[] {
    const start = this.lowerBound(range);
    const end = this.upperBound(range);
    const selected = this.pairs.slice(start, Math.max(start, end));
    if (range.reverse === true) selected.reverse();
    const limit = range.limit;
    return limit !== undefined && limit >= 0 ? selected.slice(0, limit) : selected;
  }

  clone(): SortedKv {
    const copy = new SortedKv();
    copy.pairs = this.pairs.slice();
    return copy;
  }

  /** First position whose key satisfies the lower bound of `range`. */
  private lowerBound(range: KeyRange): number {
    if (range.gte !== undefined) return this.search(range.gte).index;
    if (range.gt !== undefined) {
      const at = this.search(range.gt);
      return at.found ? at.index + 1 : at.index;
    }
    return 0;
  }

  /** Position just past the last key satisfying the upper bound of `range`. */
  private upperBound(range: KeyRange): number {
    if (range.lt !== undefined) return this.search(range.lt).index;
    if (range.lte !== undefined) {
      const at = this.search(range.lte);
      return at.found ? at.index + 1 : at.index;
    }
    return this.pairs.length;
  }

  /** Binary search: the index of `key`, or where it would be inserted. */
  private search(key: Uint8Array): { readonly index: number; readonly found: boolean } {
    let low = 0;
    let high = this.pairs.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const pair = this.pairs[middle];
      if (pair === undefined) break;
      const order = Buffer.compare(pair[0], key);
      if (order === 0) return { index: middle, found: true };
      if (order < 0) low = middle + 1;
      else high = middle;
    }
    return { index: low, found: false };
  }
}
