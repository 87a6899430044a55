// Applying an append: idempotent replay, version check, the new message record, the window
// counters, and the policy run it may trigger. Version +1 in all, also when the policy rewrites the
// window (the contract: with no manual compaction, version == last_seq); the policy's compaction
// event carries the append's version, so a stream sends both frames under one version.
//
// Idempotency keys: a key already recorded for this context answers with the original result and
// appends nothing, whatever `if_version` says (a retry of a success must not turn into a 409). If
// the retried message differs from the original (role, parts, metadata or id; token counts are not
// compared), the key is being reused for something else: 409 conflict, nothing appended.

import type { Command } from './commands.js';
import type { ContextTxn } from './context-txn.js';
import type { CompactionEvent, ContextChangeEvent } from './events.js';
import { storedMessage } from './message-view.js';
import { cloneWindow } from './records.js';
import type { MessageRecord, WindowRecord } from './records.js';
import { messageFingerprint } from './fingerprint.js';
import { conflictError, idempotencyConflictError, notFoundError, tombstonedError } from './results.js';
import type { CommandResult } from './results.js';
import { windowChange } from './window-change.js';
import { runPolicy, thresholdTokens, usedTokens } from './window-policy.js';

/** Appends after which an idempotency key is forgotten: keys of the newest this-many are remembered. */
export const idempotencyKeysRemembered = 10_000;

type AppendCommand = Extract<Command, { readonly type: 'append' }>;

export const applyAppend = async (txn: ContextTxn, command: AppendCommand): Promise<CommandResult> => {
  const records = txn.records();
  if (records === undefined) return notFoundError(txn.contextId);
  const { context, window: current } = records;
  if (context.status === 'tombstoned') return tombstonedError(txn.contextId);
  const key = command.idempotencyKey;
  if (key !== undefined) {
    const original = await txn.idempotent(key);
    if (original !== undefined) {
      const { seq, version, tokenEstimate } = original;
      if (original.fingerprint !== messageFingerprint(command.message))
        return idempotencyConflictError(key, seq);
      return { type: 'append', seq, version, token_estimate: tokenEstimate, replayed: true };
    }
  }
  if (command.ifVersion !== undefined && command.ifVersion !== current.version) {
    return conflictError(command.ifVersion, current.version);
  }

  const window = cloneWindow(current);
  const seq = ++window.lastSeq;
  let record = newMessageRecord(command, ++window.version);
  window.liveTokens += record.tokenCount;
  window.liveCount++;
  txn.stageFreshMessage(seq, record);

  const threshold = thresholdTokens(context);
  const run = await runPolicy(window, context.policy, threshold, txn);
  const version = window.version;
  let compaction: CompactionEvent | undefined;
  if (run.changed) {
    compaction = { type: 'compaction', version, reason: 'policy', ...rangeOf(run.range), at: command.now };
    record = { ...record, compaction };
    window.lastRun = run.describe(context.policy.strategy, version, usedTokens(window));
  }
  // Compaction workers learn from this event that the window needs them (or no longer does).
  let change: ContextChangeEvent | undefined;
  if (run.changed || usedTokens(window) > threshold !== usedTokens(current) > threshold) {
    change = windowChange(context, window, version, command.now);
    record = { ...record, windowChange: change };
  }
  txn.putMessage(seq, record);
  if (key !== undefined) {
    txn.putIdempotent(key, {
      seq,
      version: window.version,
      tokenEstimate: record.tokenCount,
      fingerprint: messageFingerprint(command.message),
    });
    if (window.firstKeyedSeq === 0) window.firstKeyedSeq = seq;
  }
  await forgetExpiredKey(txn, window, seq - idempotencyKeysRemembered);
  txn.setWindow(window);

  txn.emit({
    type: 'message',
    version: record.version,
    seq,
    message: storedMessage(txn.contextId, seq, record),
  });
  if (compaction !== undefined) txn.emit(compaction);
  if (change !== undefined) txn.emit(change);
  return { type: 'append', seq, version: window.version, token_estimate: record.tokenCount, replayed: false };
};

const newMessageRecord = (command: AppendCommand, version: number): MessageRecord => {
  const { message } = command;
  return {
    version,
    role: message.role,
    parts: message.parts,
    ...(message.metadata === undefined ? {} : { metadata: message.metadata }),
    tokenCount: message.tokenCount,
    partTokens: message.partTokens,
    insertedAt: command.now,
    ...(message.clientId === undefined ? {} : { clientId: message.clientId }),
    ...(command.idempotencyKey === undefined ? {} : { idempotencyKey: command.idempotencyKey }),
  };
};

const rangeOf = (range: CompactionEvent['range']) => (range === undefined ? {} : { range });

/**
 * Forgets the key of the append that just left the newest `idempotencyKeysRemembered`. The key is
 * found in that message's record, or, when the archiver trimmed the record sooner, in the seq -> key
 * record the trim left behind (apply-archive.ts), which goes too.
 */
const forgetExpiredKey = async (txn: ContextTxn, window: WindowRecord, expiredSeq: number): Promise<void> => {
  if (window.firstKeyedSeq === 0 || expiredSeq < window.firstKeyedSeq) return;
  let key: string | undefined;
  if (expiredSeq <= window.trimmedThroughSeq) {
    key = await txn.trimmedKey(expiredSeq);
    if (key !== undefined) txn.delTrimmedKey(expiredSeq);
  } else {
    key = (await txn.findMessage(expiredSeq))?.idempotencyKey;
  }
  if (key === undefined) return;
  // Only while the key still names this append (defensive: a key can only be reused once forgotten).
  if ((await txn.idempotent(key))?.seq === expiredSeq) txn.forgetIdempotent(key);
};
