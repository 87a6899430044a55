// An in-memory KvStore for tests: a sorted array of keys compared bytewise (as LevelDB does), atomic
// writes, and iterators over a copy taken at call time (a point-in-time view, like LevelDB's).

import type { BatchOp, KeyRange, KvStore } from '../../../raft/api.js';

const compare = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

const inRange = (key: Uint8Array, range: KeyRange): boolean =>
  (range.gte === undefined || compare(key, range.gte) >= 0) &&
  (range.gt === undefined || compare(key, range.gt) > 0) &&
  (range.lt === undefined || compare(key, range.lt) < 0) &&
  (range.lte === undefined || compare(key, range.lte) <= 0);

export class MemoryStore implements KvStore {
  private readonly entries = new Map<string, readonly [Uint8Array, Uint8Array]>();
  writes = 0;
  syncedWrites = 0;
  /** When set, the next write rejects with this error (to test that failures are fatal). */
  failNextWrite: Error | undefined;

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.entries.get(Buffer.from(key).toString('hex'))?.[1];
  }

  async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
    const failure = this.failNextWrite;
    if (failure !== undefined) {
      this.failNextWrite = undefined;
      throw failure;
    }
    for (const op of ops) {
      const id = Buffer.from(op.key).toString('hex');
      if (op.type === 'put') this.entries.set(id, [Uint8Array.from(op.key), Uint8Array.from(op.value)]);
      else this.entries.delete(id);
    }
    this.writes += 1;
    if (options.sync) this.syncedWrites += 1;
  }

  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    const view = [...this.entries.values()]
      .filter(([key]) => inRange(key, range))
      .sort((a, b) => compare(a[0], b[0]));
    if (range.reverse === true) view.reverse();
    const limited = range.limit !== undefined && range.limit >= 0 ? view.slice(0, range.limit) : view;
    return (async function* () {
      for (const pair of limited) yield pair;
    })();
  }

  async close(): Promise<void> {}

  /** Every key, in order (for assertions). */
  keys(): Uint8Array[] {
    return [...this.entries.values()].map(([key]) => key).sort(compare);
  }
}
