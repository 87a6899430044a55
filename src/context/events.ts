// A context's events, as the live stream will replay them by `version > cursor`.
//
// Message events need no record of their own: each message record stores its version. Every other
// event is stored under `[0x04][id][version][ordinal]` (keys.ts), except the compaction run by a
// policy during an append: it is embedded in that append's message record, because it happens on
// most appends once a window is full and a separate key would cost one more write per append; so
// is the `window` context change of an append (needs_compaction moved, or the policy ran). A
// replayer emits them right after the message they are embedded in, under the same version: one
// append is one version, whatever its policy run did.

import type { StoredMessage } from '../api/domain.js';

export interface SeqRange {
  readonly from_seq: number;
  readonly to_seq: number;
}

export interface CompactionEvent {
  readonly type: 'compaction';
  readonly version: number;
  /** `policy`: the context's policy trimmed the window during an append; `replace`: POST compact. */
  readonly reason: 'policy' | 'replace';
  /** The appended messages that left (or were rewritten in) the window, when any did. */
  readonly range?: SeqRange;
  readonly at: string;
}

/**
 * A change of the context's configuration (`created`, `updated`, `metadata`: the version is not
 * bumped, the event carries the current one) or of its window's state (`window`: an append or a
 * compaction moved needs_compaction, or a policy run rewrote the window; same version as that
 * change). The window's state after the change travels with it (absent on events stored before
 * the stream existed).
 */
export interface ContextChangeEvent {
  readonly type: 'context';
  readonly version: number;
  readonly change: 'created' | 'updated' | 'metadata' | 'window';
  readonly used_tokens?: number;
  readonly needs_compaction?: boolean;
  readonly at: string;
}

export type StoredEvent =
  | CompactionEvent
  | ContextChangeEvent
  | { readonly type: 'tombstoned'; readonly version: number; readonly at: string };

export type ContextEvent =
  | StoredEvent
  | {
      readonly type: 'message';
      readonly version: number;
      readonly seq: number;
      readonly message: StoredMessage;
    };

/** What the state machine's `onEvent` hook receives, once per event, on every replica. */
export interface AppliedEvent {
  readonly group: number;
  readonly contextId: string;
  readonly event: ContextEvent;
  /** For an event stored under its own key: its ordinal (keys.ts), the order among those events. */
  readonly ordinal?: number;
}
