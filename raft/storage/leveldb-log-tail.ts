// What a crash left at the end of LevelDB's write-ahead log. LevelDB replays its newest log on open
// and quietly stops at the first record that is cut short or fails its checksum: the write that was
// in progress when the process or machine died. Dropping it is right (a synced write never ends
// torn, and nothing is acknowledged before its fsync), but a silent drop cannot be told from a
// lost write, so the node reads the tail first and says what LevelDB is about to drop.
//
// Log format (LevelDB doc/log_format.md): 32 KiB blocks of records, each a 7-byte header (masked
// CRC-32C of type and payload, little-endian; payload length, 2 bytes; type: 1 full, 2 first, 3
// middle, 4 last) and the payload. Fewer than 7 bytes left in a block are zero padding.

import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const BLOCK_BYTES = 32 * 1024;
const HEADER_BYTES = 7;
const FULL = 1;
const FIRST = 2;
// 3 is a middle fragment: nothing to track, its checksum is checked like any other.
const LAST = 4;

/** The newest log holds at most a write buffer (4 MiB by default) and a little: read at most this. */
const READ_BYTES_MAX = 64 * 1024 * 1024;

const CRC32C_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export const crc32c = (bytes: Uint8Array, from: number, to: number): number => {
  let crc = 0xffffffff;
  for (let i = from; i < to; i++)
    crc = (CRC32C_TABLE[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
};

/** LevelDB stores CRCs masked, so a CRC of data that itself holds CRCs does not look special. */
const unmask = (masked: number): number => {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
};

export interface LogTail {
  readonly file: string;
  readonly bytes: number;
  /** Bytes from the start that form complete, valid records (and padding). */
  readonly validBytes: number;
  /** Why the rest is not valid; undefined when the log ends cleanly. */
  readonly problem?: 'cut short' | 'checksum mismatch' | 'unfinished fragmented record' | 'bad record type';
}

/** Reads a LevelDB log image and finds where its valid records end. */
export const inspectLogBytes = (file: string, bytes: Uint8Array): LogTail => {
  let offset = 0;
  /** Start of the record a FIRST fragment opened and no LAST has closed yet. */
  let openRecordAt: number | undefined;
  const end = (problem: LogTail['problem'], at: number): LogTail => ({
    file,
    bytes: bytes.length,
    validBytes: at,
    ...(problem === undefined ? {} : { problem }),
  });
  while (offset < bytes.length) {
    const leftInBlock = BLOCK_BYTES - (offset % BLOCK_BYTES);
    if (leftInBlock < HEADER_BYTES) {
      offset += Math.min(leftInBlock, bytes.length - offset);
      continue;
    }
    if (offset + HEADER_BYTES > bytes.length) return end('cut short', openRecordAt ?? offset);
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_BYTES);
    const storedCrc = view.getUint32(0, true);
    const length = view.getUint16(4, true);
    const type = view.getUint8(6);
    // A zero header is space LevelDB reserved and never wrote (it can preallocate with mmap).
    if (type === 0 && length === 0 && storedCrc === 0) return end(undefined, openRecordAt ?? offset);
    if (type < FULL || type > LAST) return end('bad record type', openRecordAt ?? offset);
    const payloadEnd = offset + HEADER_BYTES + length;
    if (payloadEnd > bytes.length) return end('cut short', openRecordAt ?? offset);
    if (crc32c(bytes, offset + HEADER_BYTES - 1, payloadEnd) !== unmask(storedCrc)) {
      return end('checksum mismatch', openRecordAt ?? offset);
    }
    if (type === FIRST) openRecordAt = offset;
    else if (type === LAST || type === FULL) openRecordAt = undefined;
    offset = payloadEnd;
  }
  return openRecordAt === undefined
    ? end(undefined, offset)
    : end('unfinished fragmented record', openRecordAt);
};

/** The newest `*.log` in a LevelDB directory, inspected; undefined when there is none. */
export const inspectNewestLog = async (dir: string): Promise<LogTail | undefined> => {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const newest = names
    .filter((name) => /^\d+\.log$/.test(name))
    .sort((a, b) => parseInt(a) - parseInt(b))
    .at(-1);
  if (newest === undefined) return undefined;
  const path = join(dir, newest);
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > READ_BYTES_MAX) return undefined;
    const bytes = new Uint8Array(size);
    await handle.read(bytes, 0, size, 0);
    return inspectLogBytes(path, bytes);
  } finally {
    await handle.close();
  }
};
