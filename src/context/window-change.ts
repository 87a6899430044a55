// The `context` event that reports a window's state after a change (events.ts), the same wherever
// it is produced: needs_compaction exactly as the LLM-window read computes it.

import type { ContextChangeEvent } from './events.js';
import type { ContextRecord, WindowRecord } from './records.js';
import { thresholdTokens, usedTokens } from './window-policy.js';

export const windowChange = (
  context: Pick<ContextRecord, 'tokenBudget' | 'triggerRatio'>,
  window: WindowRecord,
  version: number,
  at: string,
  change: ContextChangeEvent['change'] = 'window',
): ContextChangeEvent => ({
  type: 'context',
  version,
  change,
  used_tokens: usedTokens(window),
  needs_compaction: usedTokens(window) > thresholdTokens(context),
  at,
});
