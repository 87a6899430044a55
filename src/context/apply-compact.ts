// Applying POST compact: the whole window is replaced by the given messages, installed as a new
// summary generation. The message log is untouched; version +1.

import type { Command } from './commands.js';
import type { ContextTxn } from './context-txn.js';
import type { CompactionEvent, SeqRange } from './events.js';
import { cloneWindow } from './records.js';
import type { SummaryState, WindowRecord } from './records.js';
import { conflictError, notFoundError, tombstonedError } from './results.js';
import type { CommandResult } from './results.js';
import { windowChange } from './window-change.js';
import { usedTokens, windowCount } from './window-policy.js';

type CompactCommand = Extract<Command, { readonly type: 'compact' }>;

export const applyCompact = (txn: ContextTxn, command: CompactCommand): CommandResult => {
  const records = txn.records();
  if (records === undefined) return notFoundError(txn.contextId);
  const { context, window: current } = records;
  if (context.status === 'tombstoned') return tombstonedError(txn.contextId);
  if (command.ifVersion !== undefined && command.ifVersion !== current.version) {
    return conflictError(command.ifVersion, current.version);
  }

  const window = cloneWindow(current);
  const version = ++window.version;
  const replaced = liveRange(current);
  // Trimmed summary messages were kept until now (readers may still be reading them): drop all.
  for (let index = 0; index < current.summary.count; index++) txn.delSummary(current.summary.gen, index);
  window.summary = installSummary(txn, command, version, coveredSeqs(current, replaced));
  window.liveFromSeq = window.lastSeq + 1;
  window.liveTokens = 0;
  window.liveCount = 0;
  window.lastRun = {
    policy: 'compact',
    version,
    removed_messages: windowCount(current),
    removed_parts: 0,
    tokens_before: usedTokens(current),
    tokens_after: usedTokens(window),
  };
  txn.setWindow(window);
  const event: CompactionEvent = {
    type: 'compaction',
    version,
    reason: 'replace',
    ...(replaced === undefined ? {} : { range: replaced }),
    at: command.now,
  };
  txn.storeEvent(event);
  txn.storeEvent(windowChange(context, window, version, command.now));
  return { type: 'compact', version };
};

const installSummary = (
  txn: ContextTxn,
  command: CompactCommand,
  version: number,
  covered: SeqRange | undefined,
): SummaryState => {
  const generation = txn.records()?.window.summary.gen ?? 0;
  const next = generation + 1;
  let tokens = 0;
  command.replacement.forEach((draft, index) => {
    tokens += draft.tokenCount;
    txn.putSummary(next, index, {
      // Generated ids are fixed at install: a later filter rewrite must not rename the message.
      id: draft.clientId ?? `${txn.contextId}:summary:${version}:${index}`,
      role: draft.role,
      parts: draft.parts,
      ...(draft.metadata === undefined ? {} : { metadata: draft.metadata }),
      tokenCount: draft.tokenCount,
      partTokens: draft.partTokens,
      insertedAt: command.now,
    });
  });
  return {
    gen: next,
    from: 0,
    count: command.replacement.length,
    tokens,
    filtered: false,
    fromSeq: covered?.from_seq ?? 0,
    toSeq: covered?.to_seq ?? 0,
  };
};

const liveRange = (window: WindowRecord): SeqRange | undefined =>
  window.liveFromSeq <= window.lastSeq ? { from_seq: window.liveFromSeq, to_seq: window.lastSeq } : undefined;

/** The appended messages the new summary stands for: the old summary's, extended by the live ones. */
const coveredSeqs = (window: WindowRecord, replaced: SeqRange | undefined): SeqRange | undefined => {
  const summary = window.summary;
  const summaryActive = summary.from < summary.count && summary.fromSeq > 0;
  if (!summaryActive) return replaced;
  return { from_seq: summary.fromSeq, to_seq: replaced?.to_seq ?? summary.toSeq };
};
