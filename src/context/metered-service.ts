// Counts appends for /metrics around any ContextService, so the service itself stays free of
// metrics plumbing. Only first appends count: an idempotent replay appended nothing.

import type { AppendRequest, AppendResult } from '../api/domain.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ContextService } from '../api/service.js';

export const meteredService = (service: ContextService, metrics: Metrics): ContextService => ({
  putContext: (id, body) => service.putContext(id, body),
  getContext: (id) => service.getContext(id),
  deleteContext: (id) => service.deleteContext(id),
  patchMetadata: (id, metadata) => service.patchMetadata(id, metadata),
  append: async (id: string, request: AppendRequest): Promise<AppendResult> => {
    const result = await service.append(id, request);
    if (!result.replayed) {
      const source = request.message.token_count === undefined ? 'server' : 'client';
      metrics.recordAppend(request.message.role, source, result.token_estimate);
    }
    return result;
  },
  tail: (id, limit, offset) => service.tail(id, limit, offset),
  messages: (id, fromSeq, limit) => service.messages(id, fromSeq, limit),
  llmContext: (id, options) => service.llmContext(id, options),
  compact: (id, request) => service.compact(id, request),
});
