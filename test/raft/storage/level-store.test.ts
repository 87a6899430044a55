// Proves the LevelDB KvStore keeps the contract the host relies on, on a real LevelDB in a temp dir:
// bytewise-ordered ranges, point-in-time iterators, atomic batches, durability across reopen (a log
// with overwrites and compaction, hard state and applied state recover), and rejected writes.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BatchOp, KvStore } from '../../../raft/api.js';
import type { Entry } from '../../../raft/core/types.js';
import { GroupLogIndex, recoverGroupLog } from '../../../raft/storage/group-log.js';
import {
  appliedStateKey,
  groupLogRange,
  hardStateKey,
  logBatchFirstIndex,
  logMetaKey,
} from '../../../raft/storage/keys.js';
import { openLevelStore } from '../../../raft/storage/level-store.js';
import {
  decodeAppliedState,
  decodeHardState,
  decodeSnapshotMeta,
  encodeAppliedState,
  encodeHardState,
  encodeSnapshotMeta,
} from '../../../raft/storage/record-codec.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

const collect = async (iterable: AsyncIterable<readonly [Uint8Array, Uint8Array]>): Promise<number[][]> => {
  const keys: number[][] = [];
  for await (const [key] of iterable) keys.push(Array.from(key));
  return keys;
};

const entries = (first: number, count: number, term: number): Entry[] =>
  Array.from({ length: count }, (_, i) => ({ index: first + i, term, kind: 0, data: bytes(term, i) }));

describe('LevelDB store', () => {
  let dir: string;
  let store: KvStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fastpaca-level-'));
    store = await openLevelStore(dir);
  });

  afterEach(async () => {
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('gets, puts and deletes atomically, and answers undefined for a missing key', async () => {
    await store.write(
      [
        { type: 'put', key: bytes(1), value: bytes(10) },
        { type: 'put', key: bytes(2), value: bytes(20) },
        { type: 'del', key: bytes(1) },
      ],
      { sync: true },
    );
    expect(await store.get(bytes(1))).toBeUndefined();
    expect(Array.from((await store.get(bytes(2))) ?? [])).toEqual([20]);
  });

  it('iterates in bytewise order within ranges, reversed and limited', async () => {
    const keys = [bytes(0x80, 0, 1), bytes(0x02), bytes(0x80, 0, 0), bytes(0x80, 1), bytes(0x80, 0, 0xff, 3)];
    await store.write(
      keys.map((key) => ({ type: 'put', key, value: bytes(0) })),
      { sync: false },
    );
    expect(await collect(store.iterate({ gte: bytes(0x80, 0), lt: bytes(0x80, 1) }))).toEqual([
      [0x80, 0, 0],
      [0x80, 0, 1],
      [0x80, 0, 0xff, 3],
    ]);
    expect(await collect(store.iterate({ gt: bytes(0x02), reverse: true, limit: 2 }))).toEqual([
      [0x80, 1],
      [0x80, 0, 0xff, 3],
    ]);
  });

  it('gives an iterator the view as of the call, not as of its first read', async () => {
    await store.write([{ type: 'put', key: bytes(5), value: bytes(1) }], { sync: true });
    const view = store.iterate({});
    await store.write(
      [
        { type: 'put', key: bytes(6), value: bytes(2) },
        { type: 'del', key: bytes(5) },
      ],
      { sync: true },
    );
    expect(await collect(view)).toEqual([[5]]);
    expect(await collect(store.iterate({}))).toEqual([[6]]);
  });

  it('recovers hard state, applied state and a log with overwrites and compaction after reopen', async () => {
    const group = 3;
    const index = new GroupLogIndex(group);
    const write = async (build: (ops: BatchOp[]) => void): Promise<void> => {
      const ops: BatchOp[] = [];
      build(ops);
      await store.write(ops, { sync: true });
    };
    await write((ops) => index.append(entries(1, 10, 1), ops));
    await write((ops) => index.append(entries(11, 10, 1), ops));
    await write((ops) => index.append(entries(15, 3, 2), ops)); // overwrites 15..20
    await write((ops) => index.append(entries(18, 4, 2), ops));
    const compaction = { index: 12, term: 1, conf: { voters: ['a', 'b'], learners: [] } };
    await write((ops) => {
      index.compact(12, ops);
      ops.push({ type: 'put', key: logMetaKey(group), value: encodeSnapshotMeta(compaction) });
      ops.push({
        type: 'put',
        key: hardStateKey(group),
        value: encodeHardState({ term: 2, vote: 'a', commit: 19 }),
      });
      ops.push({
        type: 'put',
        key: appliedStateKey(group),
        value: encodeAppliedState({ ...compaction, index: 19, term: 2 }),
      });
    });
    await store.close();

    store = await openLevelStore(dir);
    const batches: [number, Uint8Array][] = [];
    for await (const [key, value] of store.iterate(groupLogRange(group)))
      batches.push([logBatchFirstIndex(key), value]);
    const meta = decodeSnapshotMeta((await store.get(logMetaKey(group))) ?? new Uint8Array(0));
    expect(meta).toEqual(compaction);
    const recovered = recoverGroupLog(group, batches, meta);
    expect(recovered.entries.map((entry) => [entry.index, entry.term])).toEqual([
      [13, 1],
      [14, 1],
      [15, 2],
      [16, 2],
      [17, 2],
      [18, 2],
      [19, 2],
      [20, 2],
      [21, 2],
    ]);
    // The batch 1..10 was wholly compacted away and deleted; 11.., 15.. and 18.. remain.
    expect(batches.map(([first]) => first)).toEqual([11, 15, 18]);
    expect(decodeHardState((await store.get(hardStateKey(group))) ?? new Uint8Array(0))).toEqual({
      term: 2,
      vote: 'a',
      commit: 19,
    });
    expect(decodeAppliedState((await store.get(appliedStateKey(group))) ?? new Uint8Array(0)).index).toBe(19);
  });

  it('rejects a write it cannot perform', async () => {
    await store.close();
    await expect(
      store.write([{ type: 'put', key: bytes(1), value: bytes(1) }], { sync: true }),
    ).rejects.toThrow();
  });
});
