// The torn-tail detector against logs a real LevelDB wrote: a clean log (small records, and records
// fragmented across 32 KiB blocks) ends valid; cut through its last record, given a header that
// promises more than follows, or garbage after the last record, it names the problem and the valid
// prefix, and LevelDB then opens with exactly the records before it.

import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLevelStore } from '../../../raft/storage/level-store.js';
import { crc32c, inspectLogBytes, inspectNewestLog } from '../../../raft/storage/leveldb-log-tail.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A LevelDB directory as a crash would leave it: written (synced), then copied before any close. */
const crashedStore = async (values: readonly Uint8Array[]): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), 'fp-logtail-'));
  dirs.push(dir, `${dir}-crashed`);
  const store = await openLevelStore(dir);
  for (const [i, value] of values.entries()) {
    await store.write([{ type: 'put', key: Uint8Array.of(1, i), value }], { sync: true });
  }
  cpSync(dir, `${dir}-crashed`, { recursive: true });
  await store.close();
  rmSync(join(`${dir}-crashed`, 'LOCK'), { force: true });
  return `${dir}-crashed`;
};

const newestLogPath = (dir: string): string => {
  const name = readdirSync(dir)
    .filter((entry) => entry.endsWith('.log'))
    .sort()
    .at(-1);
  if (name === undefined) throw new Error('no log');
  return join(dir, name);
};

const keysAfterOpen = async (dir: string): Promise<number> => {
  const store = await openLevelStore(dir);
  let count = 0;
  for await (const pair of store.iterate({})) if (pair !== undefined) count += 1;
  await store.close();
  return count;
};

describe('LevelDB log tail', () => {
  it('computes CRC-32C (the Castagnoli check value)', () => {
    const bytes = new TextEncoder().encode('123456789');
    expect(crc32c(bytes, 0, bytes.length)).toBe(0xe3069283);
  });

  it('finds a clean log valid to its end, with records fragmented across blocks', async () => {
    const dir = await crashedStore([
      new Uint8Array(100).fill(1),
      new Uint8Array(70_000).fill(2),
      new Uint8Array(10),
    ]);
    const tail = await inspectNewestLog(dir);
    expect(tail?.problem).toBeUndefined();
    expect(tail?.validBytes).toBe(statSync(newestLogPath(dir)).size);
  });

  it('names a record cut short, and LevelDB keeps exactly the records before it', async () => {
    const dir = await crashedStore([
      new Uint8Array(100).fill(1),
      new Uint8Array(100).fill(2),
      new Uint8Array(100).fill(3),
    ]);
    const path = newestLogPath(dir);
    const size = statSync(path).size;
    truncateSync(path, size - 40);
    const tail = await inspectNewestLog(dir);
    expect(tail).toMatchObject({ problem: 'cut short', bytes: size - 40 });
    expect(tail?.validBytes).toBeLessThan(size - 40);
    expect(await keysAfterOpen(dir)).toBe(2);
  });

  it('names a header promising more bytes than follow, and garbage after the last record', async () => {
    const dir = await crashedStore([new Uint8Array(100).fill(1), new Uint8Array(100).fill(2)]);
    const path = newestLogPath(dir);
    const clean = readFileSync(path);
    // A header of a full record of 5,000 bytes, then 20 bytes of garbage: a write that never finished.
    const torn = Buffer.concat([clean, Buffer.from([1, 2, 3, 4, 0x88, 0x13, 1]), Buffer.alloc(20, 0x5a)]);
    expect(inspectLogBytes(path, torn)).toMatchObject({ problem: 'cut short', validBytes: clean.length });
    // Garbage with a plausible length: the checksum gives it away.
    const garbage = Buffer.concat([clean, Buffer.from([9, 9, 9, 9, 4, 0, 1]), Buffer.from('junk')]);
    expect(inspectLogBytes(path, garbage)).toMatchObject({
      problem: 'checksum mismatch',
      validBytes: clean.length,
    });
    writeFileSync(path, garbage);
    expect(await keysAfterOpen(dir)).toBe(2);
  });

  it('says nothing for a directory without a store yet', async () => {
    expect(await inspectNewestLog(join(tmpdir(), 'fp-logtail-missing-dir'))).toBeUndefined();
  });
});
