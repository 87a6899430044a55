// The online snapshot file: every key and value of a node's LevelDB as one point-in-time iterator
// saw them, plus what the node needs beside it (its name). Self-checking, so a restore refuses a
// truncated or damaged file before touching a data directory:
//
//   "FPSNAP01"                       magic, 8 bytes
//   u32 length, JSON header          { format: 1, node_name, created_at, clustered }
//   0x01 u32 keyLen key u32 valLen value     one per LevelDB pair, in key order
//   0x00 u64 pairCount               end of pairs
//   32 bytes                         SHA-256 of every byte before it
//
// Integers are big-endian. Parsing is incremental (memory is bounded by the largest pair).

import { createHash, type Hash } from 'node:crypto';

export const snapshotMagic = Buffer.from('FPSNAP01', 'ascii');
export const snapshotFormat = 1;

export interface SnapshotHeader {
  readonly format: number;
  /** The node's name (<data_dir>/node-name): Raft membership names it, so a restore must keep it. */
  readonly node_name: string;
  readonly created_at: string;
  /** Whether the node was a cluster member (its groups name other voters too). */
  readonly clustered: boolean;
}

const pairTag = 0x01;
const endTag = 0x00;
const digestBytes = 32;
/** A header is a few hundred bytes; anything much larger is not a snapshot. */
const headerBytesMax = 64 * 1024;
/** LevelDB keys here are short; values are log batches or records (bounded by the entry limits). */
const keyBytesMax = 64 * 1024;
const valueBytesMax = 1024 * 1024 * 1024;

export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFormatError';
  }
}

const u32 = (value: number): Buffer => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
};

const u64 = (value: number): Buffer => {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(value));
  return buffer;
};

/**
 * The file's bytes, in pieces of about `chunkBytes`: header, then `pairs` as they come, then the
 * end marker and the digest. The pairs' iterator is closed if the consumer stops early.
 */
export const encodeSnapshot = async function* (
  header: SnapshotHeader,
  pairs: AsyncIterable<readonly [Uint8Array, Uint8Array]>,
  chunkBytes = 256 * 1024,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const take = (piece: Buffer): void => {
    hash.update(piece);
    pending.push(piece);
    pendingBytes += piece.length;
  };
  const flush = (): Buffer => {
    const out = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  };
  const headerJson = Buffer.from(JSON.stringify(header), 'utf8');
  take(snapshotMagic);
  take(u32(headerJson.length));
  take(headerJson);
  let count = 0;
  for await (const [key, value] of pairs) {
    take(Buffer.of(pairTag));
    take(u32(key.length));
    take(Buffer.from(key.buffer, key.byteOffset, key.byteLength));
    take(u32(value.length));
    take(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    count += 1;
    if (pendingBytes >= chunkBytes) yield flush();
  }
  take(Buffer.of(endTag));
  take(u64(count));
  const end = flush();
  yield Buffer.concat([end, hash.digest()]);
};

export interface SnapshotSummary {
  readonly header: SnapshotHeader;
  readonly pairs: number;
  /** Hex SHA-256 recorded in (and verified against) the file. */
  readonly digest: string;
}

/**
 * Reads a snapshot incrementally: `push` bytes as they arrive (each pair is handed to `onPair`
 * once complete), then `finish()` checks the end marker, the count and the digest. Throws
 * SnapshotFormatError on the first inconsistency.
 */
export class SnapshotParser {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private stage: 'magic' | 'header' | 'pairs' | 'digest' | 'done' = 'magic';
  private header: SnapshotHeader | undefined;
  private count = 0;
  private digest = '';
  /** Bytes consumed so far (for progress). */
  consumed = 0;

  constructor(
    private readonly onPair: (key: Buffer, value: Buffer) => void = () => undefined,
    private readonly onHeader: (header: SnapshotHeader) => void = () => undefined,
  ) {}

  push(chunk: Uint8Array): void {
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.byteLength;
    while (this.step()) {
      // Each step consumes one record; it returns false once it needs more bytes.
    }
  }

  /**
   * Whether `n` bytes are available at the front of `buffer`. Arriving chunks are joined only once
   * enough are there, so a large value arriving in many small chunks is copied once, not each time.
   */
  private has(n: number): boolean {
    if (this.buffer.length >= n) return true;
    if (this.buffer.length + this.pendingBytes < n) return false;
    this.buffer = Buffer.concat([this.buffer, ...this.pending]);
    this.pending = [];
    this.pendingBytes = 0;
    return true;
  }

  finish(): SnapshotSummary {
    if (this.stage !== 'done' || this.header === undefined) {
      throw new SnapshotFormatError(
        `the file ends early (after ${this.consumed} bytes and ${this.count} pairs): it is truncated, or a length in it is damaged`,
      );
    }
    if (this.buffer.length > 0 || this.pendingBytes > 0)
      throw new SnapshotFormatError('there are bytes after the digest');
    return { header: this.header, pairs: this.count, digest: this.digest };
  }

  /** Consumes `n` bytes from the front (hashed unless they are the digest itself). */
  private take(n: number, hashed = true): Buffer {
    const piece = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    if (hashed) this.hash.update(piece);
    this.consumed += n;
    return piece;
  }

  /** One step of parsing; false when more bytes are needed. */
  private step(): boolean {
    switch (this.stage) {
      case 'magic': {
        if (!this.has(snapshotMagic.length)) return false;
        if (!this.take(snapshotMagic.length).equals(snapshotMagic))
          throw new SnapshotFormatError('not a fastpaca snapshot (bad magic bytes)');
        this.stage = 'header';
        return true;
      }
      case 'header': {
        if (!this.has(4)) return false;
        const length = this.buffer.readUInt32BE(0);
        if (length > headerBytesMax) throw new SnapshotFormatError(`header of ${length} bytes is too large`);
        if (!this.has(4 + length)) return false;
        this.take(4);
        this.header = parseHeader(this.take(length));
        this.onHeader(this.header);
        this.stage = 'pairs';
        return true;
      }
      case 'pairs': {
        if (!this.has(1)) return false;
        const tag = this.buffer[0];
        if (tag === endTag) {
          if (!this.has(9)) return false;
          this.take(1);
          const count = Number(this.take(8).readBigUInt64BE(0));
          if (count !== this.count)
            throw new SnapshotFormatError(`the file says ${count} pairs but holds ${this.count}`);
          this.stage = 'digest';
          return true;
        }
        if (tag !== pairTag) throw new SnapshotFormatError(`unexpected record tag ${String(tag)}`);
        if (!this.has(5)) return false;
        const keyLength = this.buffer.readUInt32BE(1);
        if (keyLength > keyBytesMax) throw new SnapshotFormatError(`key of ${keyLength} bytes is too large`);
        if (!this.has(5 + keyLength + 4)) return false;
        const valueLength = this.buffer.readUInt32BE(5 + keyLength);
        if (valueLength > valueBytesMax)
          throw new SnapshotFormatError(`value of ${valueLength} bytes is too large`);
        if (!this.has(9 + keyLength + valueLength)) return false;
        this.take(5);
        const key = Buffer.from(this.take(keyLength));
        this.take(4);
        const value = Buffer.from(this.take(valueLength));
        this.count += 1;
        this.onPair(key, value);
        return true;
      }
      case 'digest': {
        if (!this.has(digestBytes)) return false;
        const expected = this.hash.digest('hex');
        const recorded = this.take(digestBytes, false).toString('hex');
        if (recorded !== expected)
          throw new SnapshotFormatError('checksum mismatch: the file is damaged (SHA-256 does not match)');
        this.digest = recorded;
        this.stage = 'done';
        return true;
      }
      case 'done':
        if (this.buffer.length > 0 || this.pendingBytes > 0)
          throw new SnapshotFormatError('there are bytes after the digest');
        return false;
    }
  }
}

const parseHeader = (bytes: Buffer): SnapshotHeader => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SnapshotFormatError('the header is not JSON');
  }
  const header = parsed as Partial<SnapshotHeader> | null;
  if (
    header === null ||
    typeof header !== 'object' ||
    header.format !== snapshotFormat ||
    typeof header.node_name !== 'string' ||
    typeof header.created_at !== 'string' ||
    typeof header.clustered !== 'boolean'
  ) {
    throw new SnapshotFormatError(`unsupported snapshot header (format ${String(header?.format)})`);
  }
  return {
    format: header.format,
    node_name: header.node_name,
    created_at: header.created_at,
    clustered: header.clustered,
  };
};
