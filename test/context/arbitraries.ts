// fast-check generators of context commands. They produce intents: `if_version` is chosen relative
// to the context's version at the time the command runs (current, stale, or arbitrary), so random
// sequences exercise both successful conditional writes and conflicts.

import fc from 'fast-check';
import type { MessageDraft } from '../../src/context/commands.js';
import type { ContextPut, JsonObject, MessagePart, Policy } from '../../src/api/domain.js';

export const contextIds = ['ctx-a', 'ctx-b', 'ctx-c'] as const;

export type IfVersionIntent = 'none' | 'current' | 'stale' | number;

export type Intent =
  | { readonly kind: 'put'; readonly contextId: string; readonly changes: ContextPut }
  | { readonly kind: 'delete'; readonly contextId: string }
  | { readonly kind: 'patch'; readonly contextId: string; readonly metadata: JsonObject }
  | {
      readonly kind: 'append';
      readonly contextId: string;
      readonly message: MessageDraft;
      readonly ifVersion: IfVersionIntent;
      readonly idempotencyKey?: string;
    }
  | {
      readonly kind: 'compact';
      readonly contextId: string;
      readonly replacement: readonly MessageDraft[];
      readonly ifVersion: IfVersionIntent;
    }
  | {
      /** The archiver's ack: up to the last seq, a little behind it, or any seq (stale or ahead). */
      readonly kind: 'ack';
      readonly contextId: string;
      readonly upTo: 'last' | 'behind' | number;
      readonly tailKeep: number;
    };

const partTypes = ['text', 'text', 'text', 'tool-call', 'tool-result', 'reasoning', 'image', 'toolbox'];

const partArb: fc.Arbitrary<{ part: MessagePart; tokens: number }> = fc.record({
  part: fc.record({
    type: fc.constantFrom(...partTypes),
    text: fc.string({ maxLength: 6 }),
  }),
  tokens: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 80 })),
});

const metadataArb: fc.Arbitrary<JsonObject> = fc.dictionary(
  fc.constantFrom('k1', 'k2', 'k3'),
  fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('x', 'y')),
  { maxKeys: 2 },
);

export const draftArb: fc.Arbitrary<MessageDraft> = fc
  .record(
    {
      role: fc.constantFrom('user', 'assistant', 'system'),
      parts: fc.array(partArb, { minLength: 1, maxLength: 3 }),
      metadata: metadataArb,
      clientId: fc.constantFrom('m1', 'm2', 'm3'),
    },
    { requiredKeys: ['role', 'parts'] },
  )
  .map(({ role, parts, metadata, clientId }) => {
    const partTokens = parts.map((p) => p.tokens);
    return {
      role,
      parts: parts.map((p) => p.part),
      ...(metadata === undefined ? {} : { metadata }),
      ...(clientId === undefined ? {} : { clientId }),
      tokenCount: partTokens.reduce((sum, tokens) => sum + tokens, 0),
      partTokens,
    };
  });

export const policyArb: fc.Arbitrary<Policy> = fc.oneof(
  fc.constant<Policy>({ strategy: 'manual', config: {} }),
  fc
    .record({ limit: fc.integer({ min: 1, max: 6 }) }, { requiredKeys: [] })
    .map((config): Policy => ({ strategy: 'last_n', config })),
  fc
    .record(
      {
        limit: fc.integer({ min: 1, max: 6 }),
        skip_kinds: fc.subarray(['tool', 'reasoning', 'image', 'te']),
      },
      { requiredKeys: [] },
    )
    .map((config): Policy => ({ strategy: 'skip_parts', config })),
);

const putArb: fc.Arbitrary<ContextPut> = fc.record(
  {
    token_budget: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(180, 340, 360)),
    trigger_ratio: fc.constantFrom(0.25, 0.35, 0.5, 0.7, 1),
    policy: policyArb,
    metadata: metadataArb,
  },
  { requiredKeys: [] },
);

const ifVersionArb: fc.Arbitrary<IfVersionIntent> = fc.oneof(
  { weight: 5, arbitrary: fc.constant<IfVersionIntent>('none') },
  { weight: 2, arbitrary: fc.constant<IfVersionIntent>('current') },
  { weight: 1, arbitrary: fc.constant<IfVersionIntent>('stale') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 40 }) },
);

const contextArb = fc.constantFrom(...contextIds);

export const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('put' as const), contextId: contextArb, changes: putArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), contextId: contextArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('patch' as const),
      contextId: contextArb,
      metadata: fc.dictionary(
        fc.constantFrom('k1', 'k2', 'k4'),
        fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 3 })),
        { maxKeys: 2 },
      ),
    }),
  },
  {
    weight: 12,
    arbitrary: fc.record(
      {
        kind: fc.constant('append' as const),
        contextId: contextArb,
        message: draftArb,
        ifVersion: ifVersionArb,
        idempotencyKey: fc.constantFrom('key-1', 'key-2', 'key-3', 'key-4'),
      },
      { requiredKeys: ['kind', 'contextId', 'message', 'ifVersion'] },
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      contextId: contextArb,
      replacement: fc.array(draftArb, { maxLength: 3 }),
      ifVersion: ifVersionArb,
    }),
  },
);

/** Sequences that usually create their contexts early, so most commands hit an existing one. */
export const intentsArb = (maxLength: number): fc.Arbitrary<Intent[]> =>
  fc
    .tuple(
      fc.array(
        fc.record({
          kind: fc.constant('put' as const),
          contextId: contextArb,
          changes: putArb.map((changes) => ({ ...changes, token_budget: changes.token_budget ?? 100 })),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      fc.array(intentArb, { maxLength }),
    )
    .map(([creates, rest]) => [...creates, ...rest]);

/** An archiver ack of a context: `upTo` relative to its last seq, a small `tailKeep`. */
export const ackIntentArb: fc.Arbitrary<Intent> = fc.record({
  kind: fc.constant('ack' as const),
  contextId: contextArb,
  upTo: fc.oneof(
    fc.constant<'last'>('last'),
    fc.constant<'behind'>('behind'),
    fc.integer({ min: 0, max: 60 }),
  ),
  tailKeep: fc.integer({ min: 0, max: 6 }),
});

/** An unconditional append without a key: what grows a history fastest. */
const plainAppendArb: fc.Arbitrary<Intent> = fc.record({
  kind: fc.constant('append' as const),
  contextId: contextArb,
  message: draftArb,
  ifVersion: fc.constant<IfVersionIntent>('none'),
});

/**
 * Sequences with archiver acks mixed in (about one command in four). Contexts are created with a
 * small last_n window most of the time, so the window moves on and trimming has room to happen.
 */
export const intentsWithAcksArb = (maxLength: number): fc.Arbitrary<Intent[]> =>
  fc
    .tuple(
      fc.array(
        fc.record({
          kind: fc.constant('put' as const),
          contextId: contextArb,
          changes: fc.record({
            token_budget: fc.integer({ min: 1, max: 40 }),
            policy: fc.oneof(
              {
                weight: 3,
                arbitrary: fc
                  .integer({ min: 1, max: 4 })
                  .map((limit): Policy => ({ strategy: 'last_n', config: { limit } })),
              },
              { weight: 1, arbitrary: policyArb },
            ),
          }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      fc.array(
        fc.oneof(
          { weight: 3, arbitrary: intentArb },
          { weight: 3, arbitrary: plainAppendArb },
          { weight: 2, arbitrary: ackIntentArb },
        ),
        { maxLength, size: 'large' },
      ),
    )
    .map(([creates, rest]) => [...creates, ...rest]);
