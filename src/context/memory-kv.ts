// An ordered in-memory key-value space with GroupKv's read interface, for tests and the reference
// consensus. Keys compare bytewise, as in LevelDB.

import type { GroupKv, KeyRange } from '../../raft/index.js';
import { keyString } from './keys.js';

export class MemoryKv implements GroupKv {
  private readonly entries = new Map<string, readonly [Uint8Array, Uint8Array]>();
  private sorted: string[] | undefined;

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.entries.get(keyString(key))?.[1];
  }

  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    // Materialized at call time: the point-in-time view GroupKv promises.
    const pairs = this.select(range);
    return (async function* () {
      yield* pairs;
    })();
  }

  put(key: Uint8Array, value: Uint8Array): void {
    const name = keyString(key);
    if (!this.entries.has(name)) this.sorted = undefined;
    this.entries.set(name, [Uint8Array.from(key), Uint8Array.from(value)]);
  }

  del(key: Uint8Array): void {
    if (this.entries.delete(keyString(key))) this.sorted = undefined;
  }

  clear(): void {
    this.entries.clear();
    this.sorted = undefined;
  }

  /** Every pair in key order, as hex strings (for byte-for-byte comparisons in tests). */
  dump(): [string, string][] {
    return this.sortedNames().map((name) => {
      const [key, value] = this.entries.get(name) ?? [new Uint8Array(), new Uint8Array()];
      return [Buffer.from(key).toString('hex'), Buffer.from(value).toString('hex')];
    });
  }

  get size(): number {
    return this.entries.size;
  }

  private sortedNames(): string[] {
    this.sorted ??= [...this.entries.keys()].sort();
    return this.sorted;
  }

  private select(range: KeyRange): (readonly [Uint8Array, Uint8Array])[] {
    const low = range.gte ?? range.gt;
    const high = range.lte ?? range.lt;
    const lowName = low === undefined ? undefined : keyString(low);
    const highName = high === undefined ? undefined : keyString(high);
    const names = this.sortedNames();
    const selected: (readonly [Uint8Array, Uint8Array])[] = [];
    for (let index = lowName === undefined ? 0 : lowerBound(names, lowName); index < names.length; index++) {
      const name = names[index] ?? '';
      if (range.gt !== undefined && name === lowName) continue;
      if (highName !== undefined && (name > highName || (range.lt !== undefined && name === highName))) break;
      const pair = this.entries.get(name);
      if (pair !== undefined) selected.push(pair);
    }
    if (range.reverse === true) selected.reverse();
    return range.limit === undefined || range.limit < 0 ? selected : selected.slice(0, range.limit);
  }
}

const lowerBound = (names: readonly string[], target: string): number => {
  let low = 0;
  let high = names.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((names[middle] ?? '') < target) low = middle + 1;
    else high = middle;
  }
  return low;
};
