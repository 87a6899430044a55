// Applying PUT, PATCH metadata and DELETE. None of them changes `version`, the messages or the
// window; each change is recorded as an event under the current version, and a command that
// changes nothing writes nothing.

import type { ContextPut, JsonObject } from '../api/domain.js';
import { defaultRequestLimits } from '../api/schemas.js';
import type { Command } from './commands.js';
import type { ContextTxn } from './context-txn.js';
import { contextView } from './context-view.js';
import { jsonEqual } from './json-equal.js';
import { checkJsonLimits } from '../api/json-limits.js';
import { initialWindow } from './records.js';
import { windowChange } from './window-change.js';
import type { ContextRecord } from './records.js';
import { notFoundError, tombstonedError } from './results.js';
import type { CommandResult } from './results.js';

type CommandOf<T extends Command['type']> = Extract<Command, { readonly type: T }>;

export const applyPutContext = (txn: ContextTxn, command: CommandOf<'put_context'>): CommandResult => {
  const records = txn.records();
  if (records === undefined) return createContext(txn, command);
  const { context, window } = records;
  if (context.status === 'tombstoned') return tombstonedError(txn.contextId);
  const next = withChanges(context, command.changes);
  if (next === context)
    return { type: 'put_context', created: false, context: contextView(txn.contextId, context, window) };
  txn.setContext({ ...next, updatedAt: txn.now });
  txn.storeEvent(windowChange(next, window, window.version, txn.now, 'updated'));
  return { type: 'put_context', created: false, context: view(txn) };
};

const createContext = (txn: ContextTxn, command: CommandOf<'put_context'>): CommandResult => {
  const { changes, defaults } = command;
  if (changes.token_budget === undefined) {
    return { error: 'invalid_context_config', message: 'token_budget is required to create a context' };
  }
  const context: ContextRecord = {
    status: 'active',
    tokenBudget: changes.token_budget,
    triggerRatio: changes.trigger_ratio ?? defaults.triggerRatio,
    policy: changes.policy ?? defaults.policy,
    metadata: changes.metadata ?? {},
    createdAt: txn.now,
    updatedAt: txn.now,
    eventCount: 0,
  };
  txn.setContext(context);
  const window = initialWindow();
  txn.setWindow(window);
  txn.storeEvent(windowChange(context, window, 0, txn.now, 'created'));
  return { type: 'put_context', created: true, context: view(txn) };
};

/** `context` with the sent fields applied; the same object when none differs. */
const withChanges = (context: ContextRecord, changes: ContextPut): ContextRecord => {
  let next = context;
  if (changes.token_budget !== undefined && changes.token_budget !== context.tokenBudget) {
    next = { ...next, tokenBudget: changes.token_budget };
  }
  if (changes.trigger_ratio !== undefined && changes.trigger_ratio !== context.triggerRatio) {
    next = { ...next, triggerRatio: changes.trigger_ratio };
  }
  if (changes.policy !== undefined && !samePolicy(changes.policy, context.policy)) {
    next = { ...next, policy: changes.policy };
  }
  if (changes.metadata !== undefined && !jsonEqual(changes.metadata, context.metadata)) {
    next = { ...next, metadata: changes.metadata };
  }
  return next;
};

const samePolicy = (a: ContextRecord['policy'], b: ContextRecord['policy']): boolean =>
  a.strategy === b.strategy && jsonEqual(a.config, b.config);

export const applyPatchMetadata = (txn: ContextTxn, command: CommandOf<'patch_metadata'>): CommandResult => {
  const records = txn.records();
  if (records === undefined) return notFoundError(txn.contextId);
  const { context } = records;
  if (context.status === 'tombstoned') return tombstonedError(txn.contextId);
  const metadata = mergeMetadata(context.metadata, command.metadata);
  if (outgrowsLimit(metadata, context.metadata)) {
    return {
      error: 'invalid_metadata',
      message: `metadata after the merge would exceed ${mergedMetadataBytesMax} bytes`,
    };
  }
  if (!jsonEqual(metadata, context.metadata)) {
    txn.setContext({ ...context, metadata, updatedAt: txn.now });
    txn.storeEvent(windowChange(context, records.window, records.window.version, txn.now, 'metadata'));
  }
  return { type: 'patch_metadata', context: view(txn) };
};

/**
 * A context's merged metadata is held to the limit of one PATCH body, or repeated PATCHes would grow
 * it without bound. Checked here, at apply, because only the current state says what a merge gives;
 * the limit is a constant, not an option, so every replica (and every replay) decides alike.
 */
const mergedMetadataBytesMax = defaultRequestLimits.metadataBytesMax;

const overLimit = (metadata: JsonObject): boolean =>
  checkJsonLimits(metadata, Infinity, mergedMetadataBytesMax) === 'too_large';

/**
 * Over the limit, unless it already was and the PATCH does not grow it (metadata stored before this
 * rule can still shrink).
 */
const outgrowsLimit = (merged: JsonObject, current: JsonObject): boolean =>
  overLimit(merged) &&
  !(overLimit(current) && JSON.stringify(merged).length <= JSON.stringify(current).length);

/** Shallow merge; a null value removes its key. Key order: existing keys first, then new ones. */
export const mergeMetadata = (current: JsonObject, patch: JsonObject): JsonObject => {
  const merged: JsonObject = { ...current, ...patch };
  return Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== null));
};

export const applyDeleteContext = (txn: ContextTxn): CommandResult => {
  const records = txn.records();
  if (records === undefined) return notFoundError(txn.contextId);
  const { context, window } = records;
  if (context.status === 'tombstoned') return { type: 'delete_context' };
  txn.setContext({ ...context, status: 'tombstoned', updatedAt: txn.now });
  txn.storeEvent({ type: 'tombstoned', version: window.version, at: txn.now });
  return { type: 'delete_context' };
};

const view = (txn: ContextTxn) => {
  const records = txn.records();
  if (records === undefined) throw new Error(`context ${txn.contextId} vanished while applied`);
  return contextView(txn.contextId, records.context, records.window);
};
