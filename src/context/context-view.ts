// A context's records as the GET/PUT/PATCH response body.

import type { ContextView } from '../api/domain.js';
import type { ContextRecord, WindowRecord } from './records.js';

export const contextView = (id: string, context: ContextRecord, window: WindowRecord): ContextView => ({
  id,
  status: context.status,
  token_budget: context.tokenBudget,
  trigger_ratio: context.triggerRatio,
  policy: context.policy,
  metadata: context.metadata,
  version: window.version,
  last_seq: window.lastSeq,
  archived_seq: window.archivedSeq,
  created_at: context.createdAt,
  inserted_at: context.createdAt,
  updated_at: context.updatedAt,
});
