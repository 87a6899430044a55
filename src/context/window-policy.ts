// The LLM window's policies, run during an append once the window is over its threshold.
//
// Cost: a run reads only the messages it removes or filters for the first time, and each appended
// message is removed once and filtered once (again only when the skip kinds grow), so an append
// costs O(its own size) amortized, never O(window). The one exception is a run with new skip
// kinds, which refilters the window once.
//
// Invariant after a run: the window is within `limit` messages and the threshold, or it is the
// newest message alone (one oversized newest message is kept rather than leaving the window empty).

import type { JsonObject, Policy } from '../api/domain.js';
import type { SeqRange } from './events.js';
import { filterParts, windowView } from './message-view.js';
import { limitOf, sameKinds, skipKindsOf, sortedUnion } from './policy-config.js';
import type { MessageRecord, SummaryRecord, WindowRecord } from './records.js';

/** What a run reads and writes besides the window record. */
export interface WindowStore {
  /** Appended message `seq` (it exists: liveFromSeq <= seq <= lastSeq). */
  message(seq: number): Promise<MessageRecord>;
  summary(generation: number, index: number): Promise<SummaryRecord>;
  putSummary(generation: number, index: number, record: SummaryRecord): void;
  delSummary(generation: number, index: number): void;
}

export const usedTokens = (window: WindowRecord): number => window.summary.tokens + window.liveTokens;

export const windowCount = (window: WindowRecord): number =>
  window.summary.count - window.summary.from + window.liveCount;

/**
 * Tokens a window may hold before its policy runs (and needs_compaction rises): the largest integer
 * not above budget × ratio. Token counts are integers, so `used > threshold` is exactly the
 * contract's `used_tokens > budget × trigger_ratio`, without the binary rounding of the product:
 * 180 × 0.35 is 62.99999999999999 in floating point, which would fire the policy at 63 tokens.
 * The 1e-6 absorbs that error (far below any decimal ratio's genuine fraction, for any budget
 * below 10^9); it is deterministic on every replica like any IEEE-754 arithmetic.
 */
export const thresholdTokens = (context: {
  readonly tokenBudget: number;
  readonly triggerRatio: number;
}): number => Math.floor(context.tokenBudget * context.triggerRatio + 1e-6);

/** Tally of one run: what left the window, which appended messages it touched. */
export class PolicyRun {
  removedMessages = 0;
  removedParts = 0;
  private fromSeq = 0;
  private toSeq = 0;

  constructor(readonly tokensBefore: number) {}

  touch(seq: number): void {
    if (this.fromSeq === 0 || seq < this.fromSeq) this.fromSeq = seq;
    if (seq > this.toSeq) this.toSeq = seq;
  }

  get changed(): boolean {
    return this.removedMessages > 0 || this.removedParts > 0;
  }

  get range(): SeqRange | undefined {
    return this.fromSeq === 0 ? undefined : { from_seq: this.fromSeq, to_seq: this.toSeq };
  }

  describe(strategy: string, version: number, tokensAfter: number): JsonObject {
    return {
      policy: strategy,
      version,
      removed_messages: this.removedMessages,
      removed_parts: this.removedParts,
      tokens_before: this.tokensBefore,
      tokens_after: tokensAfter,
    };
  }
}

/** Runs `policy` on `window` (mutated in place) if it is over `threshold`. */
export const runPolicy = async (
  window: WindowRecord,
  policy: Policy,
  threshold: number,
  store: WindowStore,
): Promise<PolicyRun> => {
  const run = new PolicyRun(usedTokens(window));
  if (policy.strategy === 'manual' || usedTokens(window) <= threshold) return run;
  if (policy.strategy === 'skip_parts') await filterWindow(window, skipKindsOf(policy), store, run);
  await trimWindow(window, limitOf(policy), threshold, store, run);
  return run;
};

const filteredMessagesRemain = (window: WindowRecord): boolean =>
  window.filteredThroughSeq >= window.liveFromSeq ||
  (window.summary.filtered && window.summary.from < window.summary.count);

/**
 * skip_parts' first step. Kinds only accumulate while filtered messages remain in the window
 * (a part once removed never comes back); when the policy's kinds grow, the window is refiltered.
 */
const filterWindow = async (
  window: WindowRecord,
  policyKinds: readonly string[],
  store: WindowStore,
  run: PolicyRun,
): Promise<void> => {
  const priorKinds = filteredMessagesRemain(window) ? window.filterKinds : [];
  const kinds = sortedUnion(priorKinds, policyKinds);
  const grew = !sameKinds(kinds, priorKinds);
  const firstSeq = grew ? window.liveFromSeq : Math.max(window.filteredThroughSeq + 1, window.liveFromSeq);
  for (let seq = firstSeq; seq <= window.lastSeq; seq++) {
    const record = await store.message(seq);
    const before = windowView(record, seq, window.filteredThroughSeq, priorKinds);
    const after = filterParts(record, kinds);
    if (after.parts.length === before.parts.length) continue;
    run.touch(seq);
    run.removedParts += before.parts.length - after.parts.length;
    window.liveTokens += after.tokens - before.tokens;
    if (before.parts.length > 0 && after.parts.length === 0) {
      window.liveCount--;
      run.removedMessages++;
    }
  }
  window.filteredThroughSeq = window.lastSeq;
  window.filterKinds = kinds;
  if (window.summary.from < window.summary.count && (grew || !window.summary.filtered)) {
    await rewriteSummary(window, kinds, store, run);
  }
  window.summary.filtered = true;
};

/** Writes the summary's remaining messages, filtered, as a new generation; deletes the old one. */
const rewriteSummary = async (
  window: WindowRecord,
  kinds: readonly string[],
  store: WindowStore,
  run: PolicyRun,
): Promise<void> => {
  const summary = window.summary;
  const generation = summary.gen + 1;
  let count = 0;
  let tokens = 0;
  for (let index = 0; index < summary.count; index++) {
    if (index >= summary.from) {
      const record = await store.summary(summary.gen, index);
      const view = filterParts(record, kinds);
      run.removedParts += record.parts.length - view.parts.length;
      if (view.parts.length === 0) run.removedMessages++;
      else {
        store.putSummary(generation, count++, {
          ...record,
          parts: view.parts,
          partTokens: view.partTokens,
          tokenCount: view.tokens,
        });
        tokens += view.tokens;
      }
    }
    store.delSummary(summary.gen, index);
  }
  window.summary = { ...summary, gen: generation, from: 0, count, tokens };
};

/**
 * last_n: drops the oldest window messages until within `limit` and `threshold`. The newest appended
 * message is kept even when it alone is over the threshold (an empty window helps nobody); any other
 * message over it goes, so a window left above the threshold is exactly that one newest message.
 */
const trimWindow = async (
  window: WindowRecord,
  limit: number,
  threshold: number,
  store: WindowStore,
  run: PolicyRun,
): Promise<void> => {
  // skip_parts may have emptied the newest message: then nothing is exempt from trimming.
  const newest = windowView(
    await store.message(window.lastSeq),
    window.lastSeq,
    window.filteredThroughSeq,
    window.filterKinds,
  );
  const keep = newest.parts.length > 0 ? 1 : 0;
  while (windowCount(window) > keep && (windowCount(window) > limit || usedTokens(window) > threshold)) {
    if (window.summary.from < window.summary.count) {
      const record = await store.summary(window.summary.gen, window.summary.from);
      window.summary.from++;
      window.summary.tokens -= record.tokenCount;
      run.removedMessages++;
      continue;
    }
    const seq = window.liveFromSeq;
    if (seq > window.lastSeq)
      throw new Error(`window accounting broken: liveCount ${window.liveCount} past lastSeq`);
    const view = windowView(await store.message(seq), seq, window.filteredThroughSeq, window.filterKinds);
    window.liveFromSeq++;
    // A message its filter emptied is already out of the window: skipping it changes nothing.
    if (seq <= window.filteredThroughSeq && view.parts.length === 0) continue;
    window.liveTokens -= view.tokens;
    window.liveCount--;
    run.removedMessages++;
    run.touch(seq);
  }
};
