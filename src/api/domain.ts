// The shapes of the wire contract (../shared/API.md), shared by the HTTP gateway, the service and
// the context state machine. JSON-compatible values only.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type PolicyStrategy = 'last_n' | 'skip_parts' | 'manual';

export interface Policy {
  readonly strategy: PolicyStrategy;
  /** last_n: {limit}; skip_parts: {skip_kinds?, limit?}; manual: {}. */
  readonly config: JsonObject;
}

export type ContextStatus = 'active' | 'tombstoned';

/** GET/PUT/PATCH /v1/contexts/:id response body. */
export interface ContextView {
  readonly id: string;
  readonly status: ContextStatus;
  readonly token_budget: number;
  readonly trigger_ratio: number;
  readonly policy: Policy;
  readonly metadata: JsonObject;
  readonly version: number;
  readonly last_seq: number;
  readonly archived_seq: number;
  readonly created_at: string;
  readonly inserted_at: string;
  readonly updated_at: string;
}

/** A message part: any object with a string `type`, stored opaquely. */
export type MessagePart = { readonly type: string } & JsonObject;

/** A message as a client sends it (append body, compaction replacement). */
export interface MessageInput {
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata?: JsonObject;
  readonly token_count?: number;
  readonly id?: string;
}

/** A message as stored and returned (tail, export, window, streams). */
export interface StoredMessage {
  readonly id: string;
  readonly seq: number;
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata: JsonObject;
  readonly token_count: number;
  readonly inserted_at: string;
}

export interface ContextPut {
  readonly token_budget?: number;
  readonly trigger_ratio?: number;
  readonly policy?: Policy;
  readonly metadata?: JsonObject;
}

export interface AppendRequest {
  readonly message: MessageInput;
  readonly if_version?: number;
  /** From the Idempotency-Key header, else message.id. */
  readonly idempotency_key?: string;
}

export interface AppendResult {
  readonly seq: number;
  readonly version: number;
  readonly token_estimate: number;
  /** True when an earlier append with the same idempotency key is being replayed (HTTP 200). */
  readonly replayed: boolean;
}

export type Segment =
  | { readonly type: 'summary'; readonly from_seq?: number; readonly to_seq?: number; readonly count: number }
  | { readonly type: 'live'; readonly from_seq: number; readonly to_seq: number };

export interface LlmContextView {
  readonly version: number;
  readonly messages: readonly StoredMessage[];
  readonly used_tokens: number;
  readonly token_count: number;
  readonly needs_compaction: boolean;
  readonly segments: readonly Segment[];
  readonly metadata: JsonObject;
  /**
   * [ext] Present when the window's messages exceed the read page budget: `messages` is then the
   * newest part of the window that fits (the older part can be read from /messages).
   */
  readonly truncated?: true;
}

export interface CompactRequest {
  readonly replacement: readonly MessageInput[];
  readonly if_version?: number;
}

export interface MessagesPage {
  readonly messages: readonly StoredMessage[];
  readonly next_from_seq?: number;
}
