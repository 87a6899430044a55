// A reference model of the contract's context semantics (API.md), simple enough to be obviously
// right: contexts, their message log, versions, idempotency keys and the last compaction's messages.
// It predicts every command's result except how far a policy trims the LLM window; for the window it
// checks invariants instead (checkWindow).

import { expect } from 'vitest';
import { checkJsonLimits } from '../../src/api/json-limits.js';
import { defaultRequestLimits } from '../../src/api/schemas.js';
import type { Command, MessageDraft } from '../../src/context/commands.js';
import { canonicalJson } from '../../src/context/fingerprint.js';
import { defaultPolicy, defaultTriggerRatio, limitOf } from '../../src/context/policy-config.js';
import type { ContextEvent } from '../../src/context/events.js';
import type { CommandResult } from '../../src/context/results.js';
import type {
  ContextView,
  JsonObject,
  JsonValue,
  LlmContextView,
  Policy,
  StoredMessage,
} from '../../src/api/domain.js';
import type { IfVersionIntent, Intent } from './arbitraries.js';
import { stamp } from './world.js';
import type { World } from './world.js';

export interface ExpectedMessage {
  readonly message: StoredMessage;
  readonly partTokens: readonly number[];
}

interface KeyEntry {
  readonly seq: number;
  readonly version: number;
  readonly tokenEstimate: number;
  readonly content: string;
}

export interface ModelContext {
  status: 'active' | 'tombstoned';
  tokenBudget: number;
  triggerRatio: number;
  policy: Policy;
  metadata: JsonObject;
  createdAt: string;
  updatedAt: string;
  version: number;
  readonly log: ExpectedMessage[];
  summary: ExpectedMessage[];
  /** Appended messages with seq >= liveFrom came after the last compaction. */
  liveFrom: number;
  /** No policy run since creation or the last compaction: the window is everything since. */
  untrimmed: boolean;
  readonly keys: Map<string, KeyEntry>;
  /** The archiver's watermark (ack_archived). */
  archivedSeq: number;
  /** Messages 1..trimmedThrough left the store after an ack; the log keeps them. */
  trimmedThrough: number;
}

const content = (draft: MessageDraft): string =>
  canonicalJson([
    draft.role,
    draft.parts as unknown as JsonValue,
    draft.metadata ?? {},
    draft.clientId ?? null,
  ]);

const toExpected = (message: StoredMessage, draft: MessageDraft): ExpectedMessage => ({
  message,
  partTokens: draft.partTokens,
});

export const viewOf = (id: string, c: ModelContext): ContextView => ({
  id,
  status: c.status,
  token_budget: c.tokenBudget,
  trigger_ratio: c.triggerRatio,
  policy: c.policy,
  metadata: c.metadata,
  version: c.version,
  last_seq: c.log.length,
  archived_seq: c.archivedSeq,
  created_at: c.createdAt,
  inserted_at: c.createdAt,
  updated_at: c.updatedAt,
});

const jsonSame = (a: unknown, b: unknown): boolean =>
  canonicalJson(a as JsonValue) === canonicalJson(b as JsonValue);

export const notFound = (id: string): CommandResult => ({
  error: 'context_not_found',
  message: `Context ${JSON.stringify(id)} does not exist`,
});

export const tombstoned = (id: string): CommandResult => ({
  error: 'context_tombstoned',
  message: `Context ${JSON.stringify(id)} is tombstoned`,
});

export const versionConflict = (expected: number, found: number): CommandResult => ({
  error: 'conflict',
  message: `Context version changed (expected ${expected}, found ${found})`,
});

/** What one step did, for the step's checks. */
export interface StepOutcome {
  readonly command: Command;
  readonly result: CommandResult;
  /** Set for a fresh (not replayed) successful append. */
  readonly appended?: { readonly seq: number; readonly ranPolicy: boolean };
}

export class ContextModel {
  readonly contexts = new Map<string, ModelContext>();
  private step = 0;

  /** The concrete command for `intent` in the current state. */
  resolve(intent: Intent): Command {
    const now = stamp(++this.step);
    const { contextId } = intent;
    switch (intent.kind) {
      case 'put':
        return {
          type: 'put_context',
          contextId,
          now,
          changes: intent.changes,
          defaults: { triggerRatio: defaultTriggerRatio, policy: defaultPolicy },
        };
      case 'delete':
        return { type: 'delete_context', contextId, now };
      case 'patch':
        return { type: 'patch_metadata', contextId, now, metadata: intent.metadata };
      case 'append':
        return {
          type: 'append',
          contextId,
          now,
          message: intent.message,
          ...this.ifVersion(contextId, intent.ifVersion),
          ...(intent.idempotencyKey === undefined ? {} : { idempotencyKey: intent.idempotencyKey }),
        };
      case 'compact':
        return {
          type: 'compact',
          contextId,
          now,
          replacement: intent.replacement,
          ...this.ifVersion(contextId, intent.ifVersion),
        };
      case 'ack': {
        const last = this.contexts.get(contextId)?.log.length ?? 0;
        const upToSeq =
          intent.upTo === 'last' ? last : intent.upTo === 'behind' ? Math.max(0, last - 2) : intent.upTo;
        return { type: 'ack_archived', contextId, now, upToSeq, tailKeep: intent.tailKeep };
      }
    }
  }

  private ifVersion(id: string, intent: IfVersionIntent): { ifVersion?: number } {
    const version = this.contexts.get(id)?.version ?? 0;
    if (intent === 'none') return {};
    if (intent === 'current') return { ifVersion: version };
    if (intent === 'stale') return { ifVersion: version > 0 ? version - 1 : version + 1 };
    return { ifVersion: intent };
  }

  /** Checks `result` against the model's prediction and advances the model. */
  /** Checks `result` (and, for an append, the `events` the state machine announced) against the model. */
  apply(command: Command, result: CommandResult, events: readonly ContextEvent[]): StepOutcome {
    const id = command.contextId;
    const c = this.contexts.get(id);
    switch (command.type) {
      case 'put_context': {
        if (c === undefined) {
          const { changes, defaults } = command;
          if (changes.token_budget === undefined) {
            expect(result).toMatchObject({ error: 'invalid_context_config' });
            return { command, result };
          }
          const created: ModelContext = {
            status: 'active',
            tokenBudget: changes.token_budget,
            triggerRatio: changes.trigger_ratio ?? defaults.triggerRatio,
            policy: changes.policy ?? defaults.policy,
            metadata: changes.metadata ?? {},
            createdAt: command.now,
            updatedAt: command.now,
            version: 0,
            log: [],
            summary: [],
            liveFrom: 1,
            untrimmed: true,
            keys: new Map(),
            archivedSeq: 0,
            trimmedThrough: 0,
          };
          this.contexts.set(id, created);
          expect(result).toEqual({ type: 'put_context', created: true, context: viewOf(id, created) });
          return { command, result };
        }
        if (c.status === 'tombstoned') {
          expect(result).toEqual(tombstoned(id));
          return { command, result };
        }
        const { token_budget, trigger_ratio, policy, metadata } = command.changes;
        let changed = false;
        if (token_budget !== undefined && token_budget !== c.tokenBudget) {
          c.tokenBudget = token_budget;
          changed = true;
        }
        if (trigger_ratio !== undefined && trigger_ratio !== c.triggerRatio) {
          c.triggerRatio = trigger_ratio;
          changed = true;
        }
        if (policy !== undefined && !jsonSame(policy, c.policy)) {
          c.policy = policy;
          changed = true;
        }
        if (metadata !== undefined && !jsonSame(metadata, c.metadata)) {
          c.metadata = metadata;
          changed = true;
        }
        if (changed) c.updatedAt = command.now;
        expect(result).toEqual({ type: 'put_context', created: false, context: viewOf(id, c) });
        return { command, result };
      }
      case 'delete_context': {
        if (c === undefined) expect(result).toEqual(notFound(id));
        else {
          if (c.status === 'active') {
            c.status = 'tombstoned';
            c.updatedAt = command.now;
          }
          expect(result).toEqual({ type: 'delete_context' });
        }
        return { command, result };
      }
      case 'patch_metadata': {
        if (c === undefined) expect(result).toEqual(notFound(id));
        else if (c.status === 'tombstoned') expect(result).toEqual(tombstoned(id));
        else {
          const merged = Object.fromEntries(
            Object.entries({ ...c.metadata, ...command.metadata }).filter(([, value]) => value !== null),
          );
          if (metadataOutgrowsLimit(merged, c.metadata)) {
            expect(result).toEqual({
              error: 'invalid_metadata',
              message: `metadata after the merge would exceed ${defaultRequestLimits.metadataBytesMax} bytes`,
            });
            return { command, result };
          }
          if (!jsonSame(merged, c.metadata)) {
            c.metadata = merged;
            c.updatedAt = command.now;
          }
          expect(result).toEqual({ type: 'patch_metadata', context: viewOf(id, c) });
        }
        return { command, result };
      }
      case 'append':
        return this.applyAppend(command, result, c, events);
      case 'ack_archived': {
        if (c === undefined) {
          expect(result).toEqual(notFound(id));
          return { command, result };
        }
        // Monotonic, never past last_seq; trims only archived messages beyond the newest tailKeep.
        c.archivedSeq = Math.max(c.archivedSeq, Math.min(command.upToSeq, c.log.length));
        expect(result).toMatchObject({
          type: 'ack_archived',
          archived_seq: c.archivedSeq,
          last_seq: c.log.length,
        });
        const { trimmed, tail_size } = result as { trimmed: number; tail_size: number };
        c.trimmedThrough += trimmed;
        if (trimmed > 0) expect(c.trimmedThrough).toBeLessThanOrEqual(c.archivedSeq - command.tailKeep);
        expect(tail_size).toBe(c.log.length - c.trimmedThrough);
        return { command, result };
      }
      case 'compact': {
        if (c === undefined) expect(result).toEqual(notFound(id));
        else if (c.status === 'tombstoned') expect(result).toEqual(tombstoned(id));
        else if (command.ifVersion !== undefined && command.ifVersion !== c.version) {
          expect(result).toEqual(versionConflict(command.ifVersion, c.version));
        } else {
          c.version += 1;
          const version = c.version;
          c.summary = command.replacement.map((draft, index) =>
            toExpected(
              {
                id: draft.clientId ?? `${id}:summary:${version}:${index}`,
                seq: 0,
                role: draft.role,
                parts: draft.parts,
                metadata: draft.metadata ?? {},
                token_count: draft.tokenCount,
                inserted_at: command.now,
              },
              draft,
            ),
          );
          c.liveFrom = c.log.length + 1;
          c.untrimmed = true;
          expect(result).toEqual({ type: 'compact', version });
        }
        return { command, result };
      }
    }
  }

  private applyAppend(
    command: Extract<Command, { type: 'append' }>,
    result: CommandResult,
    c: ModelContext | undefined,
    events: readonly ContextEvent[],
  ): StepOutcome {
    const id = command.contextId;
    if (c === undefined) {
      expect(result).toEqual(notFound(id));
      return { command, result };
    }
    if (c.status === 'tombstoned') {
      expect(result).toEqual(tombstoned(id));
      return { command, result };
    }
    const key = command.idempotencyKey;
    const original = key === undefined ? undefined : c.keys.get(key);
    if (original !== undefined) {
      if (original.content === content(command.message)) {
        const { seq, version, tokenEstimate } = original;
        expect(result).toEqual({
          type: 'append',
          seq,
          version,
          token_estimate: tokenEstimate,
          replayed: true,
        });
      } else {
        expect(result).toEqual({
          error: 'conflict',
          message: `Idempotency key ${JSON.stringify(key)} was already used for a different message (seq ${original.seq})`,
        });
      }
      return { command, result };
    }
    if (command.ifVersion !== undefined && command.ifVersion !== c.version) {
      expect(result).toEqual(versionConflict(command.ifVersion, c.version));
      return { command, result };
    }
    const seq = c.log.length + 1;
    const draft = command.message;
    expect(result).toMatchObject({ type: 'append', seq, token_estimate: draft.tokenCount, replayed: false });
    const version = (result as { version: number }).version;
    // +1 for the append, also when it triggered a policy run (the contract: one version per append).
    expect(version).toBe(c.version + 1);
    // Its events, all under that version: the message, then the policy's compaction when one ran,
    // then the window's new state when the policy ran or needs_compaction moved.
    const ranPolicy = events.some((event) => event.type === 'compaction');
    const windowEvent = events.find((event) => event.type === 'context');
    const expected: [string, number][] = [['message', version]];
    if (ranPolicy) expected.push(['compaction', version]);
    if (ranPolicy || windowEvent !== undefined) expected.push(['context', version]);
    expect(events.map((event) => [event.type, event.version])).toEqual(expected);
    if (windowEvent?.type === 'context') {
      expect(windowEvent.change).toBe('window');
      expect(windowEvent.needs_compaction).toBe(
        overThreshold(windowEvent.used_tokens ?? -1, c.tokenBudget, c.triggerRatio),
      );
    }
    if (ranPolicy) {
      expect(c.policy.strategy).not.toBe('manual');
      c.untrimmed = false;
    }
    c.version = version;
    c.log.push(
      toExpected(
        {
          id: draft.clientId ?? `${id}:${seq}`,
          seq,
          role: draft.role,
          parts: draft.parts,
          metadata: draft.metadata ?? {},
          token_count: draft.tokenCount,
          inserted_at: command.now,
        },
        draft,
      ),
    );
    if (key !== undefined) {
      c.keys.set(key, { seq, version, tokenEstimate: draft.tokenCount, content: content(draft) });
    }
    return { command, result, appended: { seq, ranPolicy } };
  }
}

// ---------------------------------------------------------------------------------------------
// Checks of the stored state against the model

/** The tokens of the parts of `original` that `shown` kept (a type filter keeps parts in order). */
const keptTokens = (original: ExpectedMessage, shown: StoredMessage): number => {
  const parts = original.message.parts;
  let at = 0;
  let tokens = 0;
  for (const part of shown.parts) {
    while (at < parts.length && !jsonSame(parts[at], part)) at++;
    if (at === parts.length) throw new Error(`window part ${JSON.stringify(part)} is not in the original`);
    tokens += original.partTokens[at] ?? 0;
    at++;
  }
  return tokens;
};

/** `shown` is `original` seen through a part filter: same message, kept parts, their token counts. */
const expectFiltered = (shown: StoredMessage, original: ExpectedMessage): void => {
  const { parts: _parts, token_count: _tokens, ...identity } = original.message;
  expect(shown).toMatchObject(identity);
  expect(shown.parts.length).toBeGreaterThan(0);
  expect(shown.token_count).toBe(keptTokens(original, shown));
};

/** Whether `shown` could be `original` seen through a part filter. */
const isFilteredFrom = (shown: StoredMessage, original: ExpectedMessage): boolean => {
  try {
    expectFiltered(shown, original);
    return true;
  } catch {
    return false;
  }
};

/**
 * `used > budget × ratio`, exactly: the generated ratios have at most two decimals, so this compares
 * integers (an oracle independent of the state machine's floating-point threshold).
 */
export const overThreshold = (used: number, budget: number, ratio: number): boolean =>
  used * 100 > budget * Math.round(ratio * 100);

const sum = (messages: readonly StoredMessage[]): number =>
  messages.reduce((total, message) => total + message.token_count, 0);

/** The window holds only compaction and appended messages, consistently counted. */
export const checkWindow = (id: string, c: ModelContext, window: LlmContextView): void => {
  expect(window.version).toBe(c.version);
  expect(window.used_tokens).toBe(sum(window.messages));
  expect(window.token_count).toBe(window.used_tokens);
  expect(window.needs_compaction).toBe(overThreshold(window.used_tokens, c.tokenBudget, c.triggerRatio));

  const summary = window.messages.filter((message) => message.seq === 0);
  const live = window.messages.slice(summary.length);
  expect(live.every((message) => message.seq > 0)).toBe(true);
  // Summary messages: an in-order subsequence of the last compaction's messages.
  let at = 0;
  for (const shown of summary) {
    while (at < c.summary.length && !isFilteredFrom(shown, c.summary[at] as ExpectedMessage)) at++;
    if (at === c.summary.length) {
      throw new Error(`${id}: summary message ${JSON.stringify(shown)} is not from the last compaction`);
    }
    at++;
  }
  // Appended messages: from after the last compaction, ascending.
  let previous = c.liveFrom - 1;
  for (const shown of live) {
    expect(shown.seq).toBeGreaterThan(previous);
    previous = shown.seq;
    const original = c.log[shown.seq - 1];
    if (original === undefined) throw new Error(`${id}: window message ${shown.seq} was never appended`);
    expectFiltered(shown, original);
  }
  if (c.untrimmed) {
    const everything = [...c.summary, ...c.log.slice(c.liveFrom - 1)].map((m) => m.message);
    expect(window.messages).toEqual(everything);
  }

  const segments = [];
  if (summary.length > 0) segments.push(expect.objectContaining({ type: 'summary', count: summary.length }));
  const oldest = live[0];
  const newest = live[live.length - 1];
  if (oldest !== undefined && newest !== undefined) {
    segments.push({ type: 'live', from_seq: oldest.seq, to_seq: newest.seq });
  }
  expect(window.segments).toEqual(segments);
};

/** After a fresh append: a policy left the window within its threshold, or the newest message alone. */
export const checkPolicyAfterAppend = (
  c: ModelContext,
  window: LlmContextView,
  appended: { readonly seq: number; readonly ranPolicy: boolean },
): void => {
  if (c.policy.strategy === 'manual') return;
  const only = window.messages.length === 1 ? window.messages[0] : undefined;
  if (overThreshold(window.used_tokens, c.tokenBudget, c.triggerRatio)) expect(only?.seq).toBe(appended.seq);
  if (appended.ranPolicy) {
    expect(window.messages.length).toBeLessThanOrEqual(limitOf(c.policy));
    expect(window.metadata).toMatchObject({ policy: c.policy.strategy, version: c.version });
  }
};

/** Everything the reads of `id` return agrees with the model. */
export const checkContext = async (world: World, model: ContextModel, id: string): Promise<void> => {
  const c = model.contexts.get(id);
  const view = await world.getContext(id);
  if (c === undefined) {
    expect(view).toBeUndefined();
    expect(await world.window(id)).toBeUndefined();
    expect(await world.messages(id, 0, 10)).toBeUndefined();
    expect(await world.tail(id, 10, 0)).toEqual([]);
    return;
  }
  expect(view).toEqual(viewOf(id, c));
  // The log is the full history, untouched by policies and compactions; the store holds it from
  // the first message not trimmed after archiving (the archive holds the rest).
  expect(await world.messages(id, 0, 1_000)).toEqual({
    messages: c.log.slice(c.trimmedThrough).map((m) => m.message),
  });
  const window = await world.window(id);
  if (window === undefined) throw new Error(`${id}: no window`);
  checkWindow(id, c, window);
};

/**
 * The rule for a merged PATCH (src/context/apply-config.ts): the result is held to one PATCH body's
 * metadata limit (compact JSON, UTF-8), unless the stored metadata was over it already and the merge
 * does not grow it.
 */
const metadataOutgrowsLimit = (merged: object, current: object): boolean => {
  const over = (metadata: object): boolean =>
    checkJsonLimits(metadata, Infinity, defaultRequestLimits.metadataBytesMax) === 'too_large';
  return over(merged) && !(over(current) && JSON.stringify(merged).length <= JSON.stringify(current).length);
};
