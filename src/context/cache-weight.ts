// An estimate of the heap bytes one cached context holds, for the cache's byte bound
// (`cacheBytesMax`). Most of a context is fixed-shape numbers and short strings; what varies is the
// client's JSON (context metadata up to 64 KiB, policy config, the last policy run's metadata).
//
// Measured on Node 20: a cached context without metadata holds ~0.9 KB of heap (records, Map slot,
// key), ~1.3 KB in a running node, where decoded strings may pin the slice of the value they were
// decoded from. Decoded JSON costs more on the heap than as text (object headers, property and
// element slots, a header per string): 2.7-2.9x its JSON length for metadata of short strings,
// more for degenerate shapes like arrays of empty objects. `jsonHeapFactor` is set above the
// typical case so that the bound evicts early rather than let the heap outgrow it.

import type { JsonObject } from '../api/domain.js';
import type { ContextRecords } from './context-txn.js';

export const cachedContextBaseBytes = 1_400;
export const jsonHeapFactor = 4;

// Records share their JSON objects across the versions of a context (an append copies the window,
// not lastRun or metadata), so each object's size is measured once, not on every apply.
const jsonLengths = new WeakMap<object, number>();

const jsonLength = (value: JsonObject | readonly string[]): number => {
  let length = jsonLengths.get(value);
  if (length === undefined) {
    length = JSON.stringify(value).length;
    jsonLengths.set(value, length);
  }
  return length;
};

/** Approximate heap bytes of a cached context's records and its cache key. */
export const cachedContextBytes = (contextId: string, records: ContextRecords): number => {
  const { context, window } = records;
  const json =
    jsonLength(context.metadata) +
    jsonLength(context.policy.config) +
    jsonLength(window.lastRun) +
    jsonLength(window.filterKinds);
  // The id is the cache's key; a string may take two bytes per character.
  return cachedContextBaseBytes + 2 * contextId.length + jsonHeapFactor * json;
};
