// The seam between the HTTP gateway and everything behind it. The gateway checks bodies (body-checks.ts)
// and calls these; implementations stamp time, count tokens, route to a Raft group and map outcomes
// to ServiceError (errors.ts). Every method either resolves with the documented body or throws a
// ServiceError.

import type {
  AppendRequest,
  AppendResult,
  CompactRequest,
  ContextPut,
  ContextView,
  JsonObject,
  LlmContextView,
  MessagesPage,
  StoredMessage,
} from './domain.js';

export interface PutContextResult {
  readonly created: boolean;
  readonly context: ContextView;
}

export interface ContextService {
  putContext(id: string, body: ContextPut): Promise<PutContextResult>;
  getContext(id: string): Promise<ContextView>;
  deleteContext(id: string): Promise<void>;
  patchMetadata(id: string, metadata: JsonObject): Promise<ContextView>;
  append(id: string, request: AppendRequest): Promise<AppendResult>;
  /** Skips `offset` newest messages, returns the next `limit` oldest-first; [] for unknown ids. */
  tail(id: string, limit: number, offset: number): Promise<readonly StoredMessage[]>;
  messages(id: string, fromSeq: number, limit: number): Promise<MessagesPage>;
  llmContext(id: string, options: { budgetTokens?: number; ifVersion?: number }): Promise<LlmContextView>;
  compact(id: string, request: CompactRequest): Promise<{ readonly version: number }>;
}

/** Health as the gateway reports it. */
export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}
