// Proves the simulated disk keeps LevelDB's promises and only those: fast-check runs random writes,
// fsync completions and crashes against a model, and checks that a crash leaves exactly a prefix of the
// issued writes that contains every acknowledged synced write and no unacknowledged one; examples check
// ordered, point-in-time iteration and that the fsync-lying disk does lose acknowledged writes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BatchOp } from '../../../raft/api.js';
import { SimDisk } from './sim-store.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const collect = async (iterable: AsyncIterable<readonly [Uint8Array, Uint8Array]>): Promise<string[]> => {
  const keys: string[] = [];
  for await (const [key] of iterable) keys.push(text(key) ?? '');
  return keys;
};

type Command =
  | { readonly kind: 'write'; readonly sync: boolean; readonly key: number; readonly del: boolean }
  | { readonly kind: 'fsync' }
  | { readonly kind: 'crash' };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    sync: fc.boolean(),
    key: fc.integer({ min: 0, max: 4 }),
    del: fc.boolean(),
  }),
  fc.constant({ kind: 'fsync' as const }),
  fc.constant({ kind: 'crash' as const }),
);

/** The contents after applying the first `count` writes of `writes` to `base`. */
const stateAfter = (
  base: ReadonlyMap<string, string>,
  writes: readonly BatchOp[][],
  count: number,
): Map<string, string> => {
  const state = new Map(base);
  for (const ops of writes.slice(0, count)) {
    for (const op of ops) {
      if (op.type === 'put') state.set(text(op.key) ?? '', text(op.value) ?? '');
      else state.delete(text(op.key) ?? '');
    }
  }
  return state;
};

const durableState = (disk: SimDisk): Map<string, string> =>
  new Map(disk.durablePairs().map(([key, value]) => [key.toString(), value.toString()]));

interface IssuedWrite {
  readonly ops: BatchOp[];
  readonly sync: boolean;
  acknowledged: boolean;
}

/** Checks one crash against the model; returns the contents that survived. */
const checkCrash = (
  disk: SimDisk,
  base: ReadonlyMap<string, string>,
  issued: readonly IssuedWrite[],
): Map<string, string> => {
  disk.crash();
  const survived = durableState(disk);
  const writes = issued.map((write) => write.ops);
  // Every write sets `last` to a unique value, so at most one prefix can match.
  const counts = Array.from({ length: issued.length + 1 }, (_, count) => count);
  const count = counts.find((candidate) => equalMaps(stateAfter(base, writes, candidate), survived));
  expect(count, 'durable contents are not a prefix of the issued writes').toBeDefined();
  const prefix = count ?? 0;
  expect(
    issued.slice(0, prefix).every((write) => write.acknowledged),
    'an unacknowledged write survived',
  ).toBe(true);
  const lastSyncedAck = issued.findLastIndex((write) => write.sync && write.acknowledged);
  expect(prefix, 'an acknowledged synced write was lost').toBeGreaterThan(lastSyncedAck);
  return survived;
};

describe('SimDisk', () => {
  it('a crash keeps a prefix of the writes holding every acknowledged synced write and nothing unacknowledged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArbitrary, { maxLength: 40 }), async (commands) => {
        const disk = new SimDisk();
        let store = disk.open();
        let base = new Map<string, string>();
        let issued: IssuedWrite[] = [];
        for (const [step, command] of [...commands, { kind: 'crash' as const }].entries()) {
          if (command.kind === 'write') {
            // Each write touches two keys, so a torn write would show.
            const ops: BatchOp[] = [
              command.del
                ? { type: 'del', key: bytes(`k${command.key}`) }
                : { type: 'put', key: bytes(`k${command.key}`), value: bytes(`w${step}`) },
              { type: 'put', key: bytes('last'), value: bytes(`w${step}`) },
            ];
            const write: IssuedWrite = { ops, sync: command.sync, acknowledged: false };
            issued.push(write);
            void store.write(ops, { sync: command.sync }).then(() => {
              write.acknowledged = true;
            });
          } else if (command.kind === 'fsync') {
            disk.completeFsync();
          } else {
            await flush();
            base = checkCrash(disk, base, issued);
            issued = [];
            store = disk.open();
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('completes writes in order: an unsynced write waits behind a synced one', async () => {
    const disk = new SimDisk();
    const store = disk.open();
    const order: string[] = [];
    void store
      .write([{ type: 'put', key: bytes('a'), value: bytes('1') }], { sync: true })
      .then(() => order.push('a'));
    void store
      .write([{ type: 'put', key: bytes('b'), value: bytes('2') }], { sync: false })
      .then(() => order.push('b'));
    await flush();
    expect(order).toEqual([]);
    expect(text(await store.get(bytes('b')))).toBeUndefined();
    disk.completeFsync();
    await flush();
    expect(order).toEqual(['a', 'b']);
    expect(text(await store.get(bytes('b')))).toBe('2');
    // `b` is visible but not durable until the next flush.
    disk.crash();
    expect(durableState(disk)).toEqual(new Map([['a', '1']]));
  });

  it('iterates in key order over a view taken at the call, honouring bounds, reverse and limit', async () => {
    const disk = new SimDisk();
    const store = disk.open();
    const keys = ['b', 'a', 'd', 'c', 'e'];
    await store.write(
      keys.map((key) => ({ type: 'put', key: bytes(key), value: bytes(key) })),
      { sync: false },
    );
    const view = store.iterate({ gt: bytes('a'), lte: bytes('d') });
    await store.write([{ type: 'del', key: bytes('c') }], { sync: false });
    expect(await collect(view)).toEqual(['b', 'c', 'd']);
    expect(
      await collect(store.iterate({ gte: bytes('b'), lt: bytes('e'), reverse: true, limit: 2 })),
    ).toEqual(['d', 'b']);
  });

  it('freezes a crashed incarnation: its pending write never resolves and never lands', async () => {
    const disk = new SimDisk();
    const old = disk.open();
    let resolved = false;
    void old.write([{ type: 'put', key: bytes('x'), value: bytes('1') }], { sync: true }).then(() => {
      resolved = true;
    });
    disk.crash();
    const fresh = disk.open();
    disk.completeAllFsyncs();
    void old.write([{ type: 'put', key: bytes('y'), value: bytes('1') }], { sync: false });
    await flush();
    expect(resolved).toBe(false);
    expect(await fresh.get(bytes('x'))).toBeUndefined();
    expect(await fresh.get(bytes('y'))).toBeUndefined();
  });

  it('with lieAboutFsync, acknowledges a synced write that a crash then loses', async () => {
    const disk = new SimDisk({ lieAboutFsync: true });
    const store = disk.open();
    await store.write([{ type: 'put', key: bytes('x'), value: bytes('1') }], { sync: true });
    disk.crash();
    expect(await disk.open().get(bytes('x'))).toBeUndefined();
  });
});

const equalMaps = (a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean =>
  a.size === b.size && [...a].every(([key, value]) => b.get(key) === value);
