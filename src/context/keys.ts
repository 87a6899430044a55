// The context state machine's keys inside one group's state-machine space (GroupKv suffixes).
// Binary and ordered so that one context's records of a kind form one contiguous range, sorted by
// their numeric suffix (big-endian integers sort like numbers):
//
//   [0x01][id]                                  context record (config, status, metadata)
//   [0x02][idLen u16][id][seq u64]              message record (the log: tail, export, window)
//   [0x03][idLen u16][id][key utf8]             idempotency key -> {seq, version, token_estimate}
//   [0x04][idLen u16][id][version u64][n u32]   non-message event (config change, tombstone, compaction)
//   [0x05][idLen u16][id][gen u32][index u32]   summary message installed by compaction, generation gen
//   [0x06][id]                                  window record (counters and LLM window bookkeeping)
//   [0x07][idLen u16][id][seq u64]              idempotency key of a trimmed, still remembered append
//
// The length prefix keeps "ab" from sorting inside the range of "a". The config and the window live
// under separate keys because the window changes on every append and the config (with its possibly
// large metadata) almost never: an append rewrites only the small window record.

export const KeyKind = {
  context: 0x01,
  message: 0x02,
  idempotency: 0x03,
  event: 0x04,
  summary: 0x05,
  window: 0x06,
  trimmedKey: 0x07,
} as const;

const u32Max = 0xffff_ffff;
const twoTo32 = 2 ** 32;

const writeU64 = (target: Buffer, offset: number, value: number): void => {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 key field ${value}`);
  target.writeUInt32BE(Math.floor(value / twoTo32), offset);
  target.writeUInt32BE(value % twoTo32, offset + 4);
};

const writeU32 = (target: Buffer, offset: number, value: number): void => {
  if (!Number.isInteger(value) || value < 0 || value > u32Max) throw new RangeError(`u32 key field ${value}`);
  target.writeUInt32BE(value, offset);
};

/** Reads the u64 big-endian field at `offset`. */
export const readU64 = (key: Uint8Array, offset: number): number => {
  const view = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return view.readUInt32BE(offset) * twoTo32 + view.readUInt32BE(offset + 4);
};

/** A key as a string usable in a Map: one char per byte, so string order is byte order. */
export const keyString = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

/** Every key of one context, built from its id once. */
export class ContextKeys {
  private readonly id: Buffer;
  /** [kind][idLen][id], kind byte left 0 to be filled per key. */
  private readonly scoped: Buffer;

  constructor(readonly contextId: string) {
    this.id = Buffer.from(contextId, 'utf8');
    this.scoped = Buffer.alloc(3 + this.id.length);
    this.scoped.writeUInt16BE(this.id.length, 1);
    this.id.copy(this.scoped, 3);
  }

  context(): Uint8Array {
    return this.unscoped(KeyKind.context);
  }

  window(): Uint8Array {
    return this.unscoped(KeyKind.window);
  }

  message(seq: number): Uint8Array {
    const key = this.withSuffix(KeyKind.message, 8);
    writeU64(key, this.scoped.length, seq);
    return key;
  }

  /** Inclusive range of message keys for seqs `fromSeq..toSeq`. */
  messageRange(fromSeq: number, toSeq: number): { readonly gte: Uint8Array; readonly lte: Uint8Array } {
    return { gte: this.message(fromSeq), lte: this.message(toSeq) };
  }

  /** The seq of a message key of this context. */
  seqOf(messageKey: Uint8Array): number {
    return readU64(messageKey, this.scoped.length);
  }

  /** Where the idempotency key of trimmed message `seq` waits to be forgotten (apply-archive.ts). */
  trimmedKey(seq: number): Uint8Array {
    const key = this.withSuffix(KeyKind.trimmedKey, 8);
    writeU64(key, this.scoped.length, seq);
    return key;
  }

  idempotency(idempotencyKey: string): Uint8Array {
    const keyBytes = Buffer.from(idempotencyKey, 'utf8');
    const key = this.withSuffix(KeyKind.idempotency, keyBytes.length);
    keyBytes.copy(key, this.scoped.length);
    return key;
  }

  event(version: number, ordinal: number): Uint8Array {
    const key = this.withSuffix(KeyKind.event, 12);
    writeU64(key, this.scoped.length, version);
    writeU32(key, this.scoped.length + 8, ordinal);
    return key;
  }

  /** The version and ordinal of an event key of this context. */
  eventPositionOf(eventKey: Uint8Array): { readonly version: number; readonly ordinal: number } {
    const view = Buffer.from(eventKey.buffer, eventKey.byteOffset, eventKey.byteLength);
    return {
      version: readU64(eventKey, this.scoped.length),
      ordinal: view.readUInt32BE(this.scoped.length + 8),
    };
  }

  summary(generation: number, index: number): Uint8Array {
    const key = this.withSuffix(KeyKind.summary, 8);
    writeU32(key, this.scoped.length, generation);
    writeU32(key, this.scoped.length + 4, index);
    return key;
  }

  // Keys are short-lived (they are copied into the store's batch) and every byte of one is written,
  // so they come from Node's Buffer pool without a zero fill.
  private unscoped(kind: number): Uint8Array {
    const key = Buffer.allocUnsafe(1 + this.id.length);
    key[0] = kind;
    this.id.copy(key, 1);
    return key;
  }

  /** The caller writes all `suffixBytes` bytes after the scoped prefix. */
  private withSuffix(kind: number, suffixBytes: number): Buffer {
    const key = Buffer.allocUnsafe(this.scoped.length + suffixBytes);
    this.scoped.copy(key, 0);
    key[0] = kind;
    return key;
  }
}
