// Which Raft group owns a context (which ids are acceptable at all: api/identifiers.ts).
//
// The mapping is part of the on-disk format: every replica and every future release must send a
// given id to the same group, or its history would be split across groups. It is therefore frozen
// as FNV-1a 32 over the id's UTF-8 bytes, reduced modulo the group count. Never change it; a new
// mapping needs a migration that moves contexts between groups.

export const defaultGroupCount = 256;

const fnvOffsetBasis = 0x811c9dc5;
const fnvPrime = 0x01000193;
const utf8 = new TextEncoder();

/** FNV-1a 32 of `bytes` as an unsigned integer. */
export const fnv1a32 = (bytes: Uint8Array): number => {
  let hash = fnvOffsetBasis;
  for (const byte of bytes) {
    hash ^= byte;
    // Math.imul keeps the multiplication in 32 bits, exactly as the reference C implementation.
    hash = Math.imul(hash, fnvPrime);
  }
  return hash >>> 0;
};

/** The Raft group of `contextId`: stable forever for a given `groupCount`. */
export const groupOf = (contextId: string, groupCount: number = defaultGroupCount): number => {
  if (!Number.isInteger(groupCount) || groupCount < 1) throw new RangeError(`groupCount ${groupCount}`);
  return fnv1a32(utf8.encode(contextId)) % groupCount;
};
