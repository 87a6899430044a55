// Every value the host writes to its store is framed as [crc32 u32 BE][payload], so a torn or rotted
// value is detected on read instead of being replayed into a Raft group.

import { crc32 } from 'node:zlib';

const HEADER_BYTES = 4;

/** A stored value failed its checksum or does not decode: the store is corrupt and the node must stop. */
export class StorageCorruptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageCorruptionError';
  }
}

export const frameChecksummed = (payload: Uint8Array): Uint8Array => {
  const framed = new Uint8Array(HEADER_BYTES + payload.length);
  new DataView(framed.buffer).setUint32(0, crc32(payload));
  framed.set(payload, HEADER_BYTES);
  return framed;
};

/** The payload of a framed value; throws StorageCorruptionError when the checksum does not match. */
export const unframeChecksummed = (framed: Uint8Array, what: string): Uint8Array => {
  if (framed.length < HEADER_BYTES)
    throw new StorageCorruptionError(`${what}: value shorter than its header`);
  const stored = new DataView(framed.buffer, framed.byteOffset, framed.byteLength).getUint32(0);
  const payload = framed.subarray(HEADER_BYTES);
  if (crc32(payload) !== stored) throw new StorageCorruptionError(`${what}: checksum mismatch`);
  return payload;
};
