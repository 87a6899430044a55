// Proves snapshot transfer over real transports: a chunked snapshot of several MiB arrives intact
// (pairs compared by digest and count) and the receiver's boolean comes back; a snapshot over the
// receiver's budget, a wrong secret, an unknown peer and a chunk over frameBytesMax all end in
// `false` without anything being installed. Every transport is stopped after each test.

import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { SnapshotChunk } from '../../../raft/api.js';
import { MessageType } from '../../../raft/core/types.js';
import type { Message } from '../../../raft/core/types.js';
import { Cluster, connect, SECRET } from './harness.js';

const cluster = new Cluster();
afterEach(() => cluster.stopAll());

const snapMessage = (from: string, to: string): Message => ({
  type: MessageType.Snap,
  from,
  to,
  term: 4,
  snapshot: { index: 1_000, term: 4, conf: { voters: [from, to], learners: [] } },
});

/** `chunkCount` chunks of `pairsPerChunk` pairs with `valueBytes`-byte values, deterministic content. */
const makeChunks = (
  to: string,
  chunkCount: number,
  pairsPerChunk: number,
  valueBytes: number,
): readonly SnapshotChunk[] =>
  Array.from({ length: chunkCount }, (_, seq) => ({
    group: 17,
    message: snapMessage('a', to),
    seq,
    last: seq === chunkCount - 1,
    pairs: Array.from({ length: pairsPerChunk }, (_, i) => {
      const n = seq * pairsPerChunk + i;
      const key = new Uint8Array(8);
      new DataView(key.buffer).setBigUint64(0, BigInt(n));
      return [key, new Uint8Array(valueBytes).fill(n % 256)] as const;
    }),
  }));

async function* stream(chunks: readonly SnapshotChunk[]): AsyncIterable<SnapshotChunk> {
  for (const chunk of chunks) yield chunk;
}

const digestOf = (pairs: readonly (readonly [Uint8Array, Uint8Array])[]): string => {
  const hash = createHash('sha256');
  for (const [key, value] of pairs) hash.update(key).update(value);
  return hash.digest('hex');
};

describe('grpc transport: snapshots', () => {
  it('delivers a chunked snapshot of several MiB intact and returns the answer', async () => {
    const [a, b] = await Promise.all([cluster.start('a'), cluster.start('b')]);
    connect(a, b);
    const chunks = makeChunks('b', 48, 32, 4 * 1024); // 48 × 32 × 4 KiB = 6 MiB
    expect(await a.transport.sendSnapshot('b', stream(chunks))).toBe(true);
    expect(b.snapshots).toHaveLength(1);
    const [received] = b.snapshots;
    const sent = chunks.flatMap((chunk) => chunk.pairs);
    expect(received?.from).toBe('a');
    expect(received?.group).toBe(17);
    expect(received?.message).toEqual(snapMessage('a', 'b'));
    expect(received?.pairs).toHaveLength(sent.length);
    expect(digestOf(received?.pairs ?? [])).toBe(digestOf(sent));

    b.snapshotAnswer = false;
    expect(await a.transport.sendSnapshot('b', stream(makeChunks('b', 2, 4, 16)))).toBe(false);
    expect(b.snapshots).toHaveLength(2);
    expect(a.transport.stats().snapshotsSent).toBe(2);
  });

  it('refuses a snapshot over the receiver budget without installing it', async () => {
    const a = await cluster.start('a');
    const b = await cluster.start('b', { clusterSecret: SECRET, snapshotBytesMax: 1024 * 1024 });
    connect(a, b);
    expect(await a.transport.sendSnapshot('b', stream(makeChunks('b', 16, 16, 8 * 1024)))).toBe(false);
    expect(b.snapshots).toEqual([]);
    expect(a.linkErrors.some((entry) => entry.error.code === 8)).toBe(true); // RESOURCE_EXHAUSTED
    // The budget was given back: a small snapshot still fits.
    expect(await a.transport.sendSnapshot('b', stream(makeChunks('b', 2, 4, 1024)))).toBe(true);
  });

  it('answers false for a wrong secret, an unknown peer and an oversized chunk', async () => {
    const b = await cluster.start('b');
    const wrong = await cluster.start('wrong', { clusterSecret: 'nope' });
    connect(wrong, b);
    expect(await wrong.transport.sendSnapshot('b', stream(makeChunks('b', 2, 2, 16)))).toBe(false);
    expect(await b.transport.sendSnapshot('nobody', stream(makeChunks('nobody', 1, 1, 1)))).toBe(false);

    const small = await cluster.start('small', { clusterSecret: SECRET, frameBytesMax: 16 * 1024 });
    connect(small, b);
    expect(await small.transport.sendSnapshot('b', stream(makeChunks('b', 1, 1, 32 * 1024)))).toBe(false);
    expect(b.snapshots).toEqual([]);
  });

  it('rethrows an error of the chunk source (the host store), after cancelling the call', async () => {
    const [a, b] = await Promise.all([cluster.start('a'), cluster.start('b')]);
    connect(a, b);
    async function* failing(): AsyncIterable<SnapshotChunk> {
      yield* makeChunks('b', 2, 2, 16).slice(0, 1);
      throw new Error('store read failed');
    }
    await expect(a.transport.sendSnapshot('b', failing())).rejects.toThrow('store read failed');
    expect(b.snapshots).toEqual([]);
  });
});
