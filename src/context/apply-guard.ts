// What an exception thrown while one committed entry is applied means: is the entry at fault, or
// this node?
//
// Every replica applies the same entries to the same state. An exception that follows from those
// two alone (a command that passed decoding but trips over a state it was never meant to meet, a
// bug on some rare path) happens on every replica alike. Were it fatal, every replica would exit,
// restart, replay the entry and exit again: one entry would take the group, and with it the
// cluster, down for good. So the state machine answers such an entry with an error result and
// writes nothing for it, which every replica does alike.
//
// That is only sound for exceptions that every replica meets. An exception caused by this node
// alone must stay fatal: had this replica answered the entry with an error while the others applied
// it, the replicas would differ from then on, silently. These are:
// - a failed store read (StoreReadError): the disk, not the entry (a failed store *write* happens in
//   the host after apply returns, and is fatal there by design: fsync failures are never retried);
// - a stored value that does not decode (StoredRecordError): this node's store is damaged;
// - a stack overflow: how deep the stack may grow depends on where the apply runs, so it may
//   happen on one replica and not another. Decoding bounds a command's nesting (wire-shape.ts) far
//   below any depth that overflows, so meeting one means something else is wrong.
// Running out of memory cannot be caught and ends the process as before.

import { StoreReadError } from './group-access.js';
import { StoredRecordError } from './records.js';

const isStackOverflow = (error: unknown): boolean =>
  error instanceof RangeError && /call stack/i.test(error.message);

/** The exception is this node's failure, not the entry's: it must fail the apply. */
export const isLocalFailure = (error: unknown): boolean =>
  error instanceof StoreReadError || error instanceof StoredRecordError || isStackOverflow(error);

/** An entry answered with an error result instead of being applied. */
export interface RefusedEntry {
  readonly group: number;
  readonly index: number;
  /** `malformed`: it does not decode to a valid command; `failed`: applying the command threw. */
  readonly reason: 'malformed' | 'failed';
  readonly error: Error;
}

export const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
