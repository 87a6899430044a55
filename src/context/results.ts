// What applying a command yields: a success body, or an expected failure as a value. The same
// result is computed on every replica; only the proposing node hands it to its caller.

import type { ContextView } from '../api/domain.js';

export type CommandErrorCode =
  | 'conflict'
  | 'context_not_found'
  | 'context_tombstoned'
  | 'invalid_context_config'
  /** A PATCH whose merge would grow the metadata past its limit (apply-config.ts). */
  | 'invalid_metadata'
  /**
   * A committed entry that does not decode to a valid command (commands.ts), or whose apply threw
   * (apply-guard.ts): answered alike on every replica, never applied.
   */
  | 'internal';

export interface CommandError {
  readonly error: CommandErrorCode;
  readonly message: string;
}

export type CommandResult =
  | { readonly type: 'put_context'; readonly created: boolean; readonly context: ContextView }
  | { readonly type: 'patch_metadata'; readonly context: ContextView }
  | { readonly type: 'delete_context' }
  | {
      readonly type: 'append';
      readonly seq: number;
      readonly version: number;
      readonly token_estimate: number;
      readonly replayed: boolean;
    }
  | { readonly type: 'compact'; readonly version: number }
  | {
      readonly type: 'ack_archived';
      readonly archived_seq: number;
      readonly last_seq: number;
      /** Messages this ack trimmed from the store. */
      readonly trimmed: number;
      /** Messages left in the store (last_seq minus those trimmed so far). */
      readonly tail_size: number;
      /** Tokens of the LLM window (for fastpaca_archive_llm_token_count). */
      readonly window_tokens: number;
    }
  /** The leader's empty entry of a new term. */
  | { readonly type: 'noop' }
  | CommandError;

export const isCommandError = (result: CommandResult): result is CommandError => 'error' in result;

export const conflictError = (expected: number, found: number): CommandError => ({
  error: 'conflict',
  message: `Context version changed (expected ${expected}, found ${found})`,
});

export const notFoundError = (contextId: string): CommandError => ({
  error: 'context_not_found',
  message: `Context ${JSON.stringify(contextId)} does not exist`,
});

export const tombstonedError = (contextId: string): CommandError => ({
  error: 'context_tombstoned',
  message: `Context ${JSON.stringify(contextId)} is tombstoned`,
});

export const idempotencyConflictError = (key: string, seq: number): CommandError => ({
  error: 'conflict',
  message: `Idempotency key ${JSON.stringify(key)} was already used for a different message (seq ${seq})`,
});
