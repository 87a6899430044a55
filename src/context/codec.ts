// The one msgpackr configuration of the context state machine, for commands and stored records.
// Replicas must write byte-identical values, so the encoding is pinned: plain msgpack maps (no
// record extension, whose shared structures depend on what a process encoded before), float64 for
// non-integers, and a leading tag byte that names the format so it can evolve.

import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, variableMapSize: true });

/**
 * `[tag][msgpack(value)]`, in a fresh buffer that owns its bytes. Use it for values that may live
 * long, such as commands: the Raft log keeps its entries in memory until it compacts.
 */
export const encodeTagged = (tag: number, value: unknown): Uint8Array => {
  const body = packr.pack(value);
  const out = new Uint8Array(1 + body.length);
  out[0] = tag;
  out.set(body, 1);
  return out;
};

/**
 * The same bytes as `encodeTagged`, carved from Node's shared Buffer pool: no malloc and no zero
 * fill per value, about half the cost of `encodeTagged` for a chat message. Only for values that die
 * soon (records on their way to the store, which copies them): a pooled buffer keeps its whole 8 KiB
 * slab alive for as long as it lives.
 */
export const encodeTaggedTransient = (tag: number, value: unknown): Uint8Array => {
  const body = packr.pack(value);
  // Every byte is written below, so the pool's uninitialised memory never leaks out.
  const out = Buffer.allocUnsafe(1 + body.length);
  out[0] = tag;
  out.set(body, 1);
  return out;
};

/** The tag byte and decoded body of a value written by `encodeTagged`. */
export const decodeTagged = (data: Uint8Array): { readonly tag: number; readonly value: unknown } => {
  const tag = data[0];
  if (tag === undefined) throw new Error('empty encoded value');
  return { tag, value: packr.unpack(data.subarray(1)) as unknown };
};
