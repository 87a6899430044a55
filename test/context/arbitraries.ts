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
