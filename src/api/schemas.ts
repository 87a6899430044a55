// TypeBox schemas of the wire contract (../shared/API.md): every request body, query string and
// response body. They are the single source for request validation (http/validation.ts compiles them
// with ajv) and for the OpenAPI document (http/openapi.ts), so the docs cannot drift from what the
// gateway accepts. Request schemas depend on the configured limits, hence a factory.
//
// Objects never set `additionalProperties: false`: the contract says unknown request fields are
// ignored, so they validate and are then dropped when the gateway builds the domain value.

import { Type } from '@sinclair/typebox';
import type { TObject, TSchema } from '@sinclair/typebox';

import { ErrorCodes } from './errors.js';
import { contextIdBytesMax } from './identifiers.js';

/** Size limits of one request, enforced before anything reaches the service. */
export interface RequestLimits {
  /** Request body size; larger bodies are refused with 413 while they stream in. */
  readonly bodyBytesMax: number;
  /** Parts in one message. */
  readonly partsPerMessageMax: number;
  /** Messages in one compaction replacement. */
  readonly replacementMessagesMax: number;
  /** Short identifiers: message id, role, part type, Idempotency-Key, skip kind. */
  readonly nameLengthMax: number;
  /** Compact-JSON size of one metadata object (context, message, PATCH). */
  readonly metadataBytesMax: number;
  /** Nesting of parts and metadata; deeper values would overflow the stack of JSON.stringify later. */
  readonly jsonDepthMax: number;
}

export const defaultRequestLimits: RequestLimits = {
  bodyBytesMax: 1024 * 1024,
  partsPerMessageMax: 1_000,
  replacementMessagesMax: 10_000,
  nameLengthMax: 256,
  metadataBytesMax: 64 * 1024,
  jsonDepthMax: 64,
};

const safeIntegerMax = Number.MAX_SAFE_INTEGER;
const pageLimitMax = 1_000;

export const policyStrategies = ['last_n', 'skip_parts', 'manual'] as const;

const Version = (description: string) => Type.Integer({ minimum: 0, maximum: safeIntegerMax, description });
const Timestamp = Type.String({ description: 'ISO-8601 UTC with Z, stamped by the accepting node' });

/** Any JSON object (metadata, policy config). */
export const JsonObjectSchema = Type.Object({}, { additionalProperties: true });

/** Strategy-specific policy configs; each is also a branch of PolicySchema. */
export const buildPolicyConfigSchemas = (limits: RequestLimits) => ({
  last_n: Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: safeIntegerMax, description: 'Newest messages kept' }),
  }),
  skip_parts: Type.Object({
    skip_kinds: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: limits.nameLengthMax }), {
        maxItems: 64,
        description: 'Part type prefixes removed first; default ["tool", "reasoning"]',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: safeIntegerMax })),
  }),
  manual: Type.Object({}),
});

export const buildPolicySchema = (limits: RequestLimits) => {
  const configs = buildPolicyConfigSchemas(limits);
  return Type.Union(
    [
      Type.Object({ strategy: Type.Literal('last_n'), config: configs.last_n }),
      Type.Object({ strategy: Type.Literal('skip_parts'), config: Type.Optional(configs.skip_parts) }),
      Type.Object({ strategy: Type.Literal('manual'), config: Type.Optional(configs.manual) }),
    ],
    { description: 'Default {"strategy":"last_n","config":{"limit":200}}' },
  );
};

const buildMessageInputSchema = (limits: RequestLimits) =>
  Type.Object({
    role: Type.String({ minLength: 1, maxLength: limits.nameLengthMax }),
    parts: Type.Array(
      Type.Object(
        { type: Type.String({ minLength: 1, maxLength: limits.nameLengthMax }) },
        { additionalProperties: true, description: 'Stored opaquely; AI SDK UIMessage parts work as-is' },
      ),
      { minItems: 1, maxItems: limits.partsPerMessageMax },
    ),
    metadata: Type.Optional(JsonObjectSchema),
    token_count: Type.Optional(
      Type.Integer({ minimum: 0, maximum: safeIntegerMax, description: 'Overrides the server estimate' }),
    ),
    id: Type.Optional(Type.String({ minLength: 1, maxLength: limits.nameLengthMax })),
  });

/** Request schemas, built from the limits they enforce. */
export const buildRequestSchemas = (limits: RequestLimits) => {
  const MessageInput = buildMessageInputSchema(limits);
  return {
    ContextPut: Type.Object({
      token_budget: Type.Optional(
        Type.Integer({ minimum: 1, maximum: safeIntegerMax, description: 'Required on create' }),
      ),
      trigger_ratio: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.7 })),
      policy: Type.Optional(buildPolicySchema(limits)),
      metadata: Type.Optional(JsonObjectSchema),
    }),
    MetadataPatch: Type.Object({
      metadata: Type.Object(
        {},
        { additionalProperties: true, description: 'Shallow merge; null removes a key' },
      ),
    }),
    MessageInput,
    Append: Type.Object({
      message: MessageInput,
      if_version: Type.Optional(Version('Must equal the current version, else 409 conflict')),
    }),
    Compact: Type.Object({
      replacement: Type.Array(MessageInput, { maxItems: limits.replacementMessagesMax }),
      if_version: Type.Optional(Version('Must equal the current version, else 409 conflict')),
    }),
  };
};

export type RequestSchemas = ReturnType<typeof buildRequestSchemas>;

/** Query strings, after their values were parsed as integers (query values are never coerced by ajv). */
export const querySchemas = {
  Tail: Type.Object({
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: pageLimitMax, default: 100 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: safeIntegerMax, default: 0 })),
  }),
  Messages: Type.Object({
    from_seq: Type.Optional(Type.Integer({ minimum: 0, maximum: safeIntegerMax, default: 0 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: pageLimitMax, default: 100 })),
  }),
  LlmContext: Type.Object({
    budget_tokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: safeIntegerMax,
        description: 'Overrides the budget for this read',
      }),
    ),
    if_version: Type.Optional(Version('Must equal the current version, else 409 conflict')),
  }),
} satisfies Record<string, TObject>;

export const ContextIdSchema = Type.String({
  minLength: 1,
  maxLength: contextIdBytesMax,
  description: '1–256 bytes of UTF-8, no control characters and no "/" (URL-encode the rest)',
});

const buildStoredMessageSchema = (limits: RequestLimits) =>
  Type.Object({
    id: Type.String({ description: 'The client id, or "<contextId>:<seq>"' }),
    seq: Type.Integer({ minimum: 1 }),
    role: Type.String(),
    parts: buildMessageInputSchema(limits).properties.parts,
    metadata: JsonObjectSchema,
    token_count: Type.Integer({ minimum: 0 }),
    inserted_at: Timestamp,
  });

/** Response schemas (documentation only: the gateway trusts the service's shapes). */
export const buildResponseSchemas = (limits: RequestLimits) => {
  const StoredMessage = buildStoredMessageSchema(limits);
  return {
    ContextView: Type.Object({
      id: Type.String(),
      status: Type.Union([Type.Literal('active'), Type.Literal('tombstoned')]),
      token_budget: Type.Integer({ minimum: 1 }),
      trigger_ratio: Type.Number({ exclusiveMinimum: 0, maximum: 1 }),
      policy: buildPolicySchema(limits),
      metadata: JsonObjectSchema,
      version: Version('+1 per append and per compaction'),
      last_seq: Type.Integer({ minimum: 0 }),
      archived_seq: Type.Integer({ minimum: 0 }),
      created_at: Timestamp,
      inserted_at: Timestamp,
      updated_at: Timestamp,
    }),
    StoredMessage,
    AppendResult: Type.Object({
      seq: Type.Integer({ minimum: 1 }),
      version: Version('Context version after the append'),
      token_estimate: Type.Integer({ minimum: 0 }),
    }),
    TailPage: Type.Object({
      messages: Type.Array(StoredMessage),
      next_offset: Type.Optional(
        Type.Integer({
          minimum: 1,
          description:
            '[ext] Present when the read page budget cut the page short: the offset that continues it, older',
        }),
      ),
    }),
    MessagesPage: Type.Object({
      messages: Type.Array(StoredMessage),
      next_from_seq: Type.Optional(
        Type.Integer({
          minimum: 0,
          description: 'Present when more remain (also when the read page budget cut the page short)',
        }),
      ),
    }),
    LlmContext: Type.Object({
      version: Version('Context version the window reflects'),
      messages: Type.Array(StoredMessage),
      used_tokens: Type.Integer({ minimum: 0 }),
      token_count: Type.Integer({ minimum: 0, description: '= used_tokens' }),
      needs_compaction: Type.Boolean({ description: 'used_tokens > budget × trigger_ratio' }),
      segments: Type.Array(
        Type.Union([
          Type.Object({
            type: Type.Literal('summary'),
            from_seq: Type.Optional(Type.Integer()),
            to_seq: Type.Optional(Type.Integer()),
            count: Type.Integer({ minimum: 0 }),
          }),
          Type.Object({ type: Type.Literal('live'), from_seq: Type.Integer(), to_seq: Type.Integer() }),
        ]),
      ),
      metadata: JsonObjectSchema,
      truncated: Type.Optional(
        Type.Literal(true, {
          description:
            '[ext] The window exceeds the read page budget: messages are its newest part that fits',
        }),
      ),
    }),
    CompactResult: Type.Object({ version: Version('Context version after the compaction') }),
    Error: Type.Object({
      error: Type.Union(Object.keys(ErrorCodes).map((code) => Type.Literal(code))),
      message: Type.String({ description: 'A human sentence; never internals' }),
    }),
    HealthOk: Type.Object({ status: Type.Literal('ok') }),
    HealthStarting: Type.Object({ status: Type.Literal('starting'), reason: Type.String() }),
  } satisfies Record<string, TSchema>;
};
