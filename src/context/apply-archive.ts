// Applying `ack_archived`: the archiver wrote a context's messages through `upToSeq` to Postgres
// (archiver/), so `archived_seq` moves there and the store keeps only the hot tail. Every replica
// applies it the same way, so every replica trims the same messages.
//
// - archived_seq only grows and never passes last_seq (an ack from a stale leader is harmless).
// - Trimmed: the archived messages older than the newest `tailKeep` archived ones (the command
//   carries tailKeep so that every replica trims alike, whatever its own configuration says), but
//   never a message newer than archived_seq and never one still in the LLM window (seq >=
//   liveFromSeq: the window and its policies read those), at most `trimPerAckMax` per ack so one
//   entry's apply stays small (the next ack continues).
// - A trimmed message whose idempotency key is still remembered leaves a seq -> key record, so the
//   key is still forgotten on time (apply-append.ts).
// - Neither version, updated_at nor any stream event changes: archiving is not a change of the
//   context.

import type { Command } from './commands.js';
import type { ContextTxn } from './context-txn.js';
import { idempotencyKeysRemembered } from './apply-append.js';
import { cloneWindow } from './records.js';
import { notFoundError } from './results.js';
import type { CommandResult } from './results.js';
import { usedTokens } from './window-policy.js';

/** Messages one ack trims at most. */
export const trimPerAckMax = 10_000;

type AckCommand = Extract<Command, { readonly type: 'ack_archived' }>;

export const applyAckArchived = async (txn: ContextTxn, command: AckCommand): Promise<CommandResult> => {
  const records = txn.records();
  if (records === undefined) return notFoundError(txn.contextId);
  const current = records.window;
  const archivedSeq = Math.max(current.archivedSeq, Math.min(command.upToSeq, current.lastSeq));
  const trimTo = Math.min(
    archivedSeq - command.tailKeep,
    current.liveFromSeq - 1,
    current.trimmedThroughSeq + trimPerAckMax,
  );
  const window = cloneWindow(current);
  window.archivedSeq = archivedSeq;
  let trimmed = 0;
  for (let seq = current.trimmedThroughSeq + 1; seq <= trimTo; seq++) {
    if (keyStillRemembered(current.firstKeyedSeq, current.lastSeq, seq)) {
      const key = (await txn.findMessage(seq))?.idempotencyKey;
      if (key !== undefined) txn.putTrimmedKey(seq, key);
    }
    txn.delMessage(seq);
    trimmed++;
  }
  if (trimmed > 0) window.trimmedThroughSeq = trimTo;
  if (archivedSeq !== current.archivedSeq || trimmed > 0) txn.setWindow(window);
  return {
    type: 'ack_archived',
    archived_seq: archivedSeq,
    last_seq: window.lastSeq,
    trimmed,
    tail_size: window.lastSeq - window.trimmedThroughSeq,
    window_tokens: usedTokens(window),
  };
};

/** Whether the append at `seq` may still hold a remembered idempotency key. */
const keyStillRemembered = (firstKeyedSeq: number, lastSeq: number, seq: number): boolean =>
  firstKeyedSeq !== 0 && seq >= firstKeyedSeq && seq > lastSeq - idempotencyKeysRemembered;
