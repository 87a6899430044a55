// Turns untrusted request bodies and query strings into the domain values the service accepts, or
// throws a ServiceError with the contract's code and a sentence naming the offending field. The
// TypeBox schemas (../api/schemas.ts) are compiled once per server; values are rebuilt field by field so
// unknown fields, which the contract says are ignored, never reach the service or the Raft log.

import type { Static, TObject } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';

import type {
  AppendRequest,
  CompactRequest,
  ContextPut,
  JsonObject,
  MessageInput,
  Policy,
} from '../api/domain.js';
import type { ErrorCode } from '../api/errors.js';
import { ServiceError } from '../api/errors.js';
import { validateIdempotencyKey } from '../api/identifiers.js';
import type { RequestLimits, RequestSchemas } from '../api/schemas.js';
import {
  buildPolicyConfigSchemas,
  buildRequestSchemas,
  policyStrategies,
  querySchemas,
} from '../api/schemas.js';
import { checkJsonLimits } from '../context/json-limits.js';
import { parseIntegerQuery } from './query.js';

export interface TailQuery {
  readonly limit: number;
  readonly offset: number;
}

export interface MessagesQuery {
  readonly fromSeq: number;
  readonly limit: number;
}

export interface LlmContextQuery {
  readonly budgetTokens?: number;
  readonly ifVersion?: number;
}

export interface RequestValidators {
  contextPut(body: unknown): ContextPut;
  metadataPatch(body: unknown): JsonObject;
  /** `idempotencyKeyHeader` is the raw header ('' when absent); message.id is the fallback key. */
  append(body: unknown, idempotencyKeyHeader: string): AppendRequest;
  compact(body: unknown): CompactRequest;
  tailQuery(rawQuery: string): TailQuery;
  messagesQuery(rawQuery: string): MessagesQuery;
  llmContextQuery(rawQuery: string): LlmContextQuery;
}

/** JSON.parse with the contract's error; the input is the already size-checked body. */
export const parseJsonBody = (text: string): unknown => {
  // A key named "__proto__" cannot be stored faithfully (msgpackr renames it on decode, and many
  // clients mishandle it), so it is refused. Only a body that spells it, or escapes characters (which
  // could spell it), pays for the reviver that finds it.
  const reviver = text.includes('__proto__') || text.includes('\\u') ? refuseProtoKey : undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, reviver) as unknown;
  } catch (error) {
    if (error instanceof ServiceError) throw error;
    throw new ServiceError('invalid_json', 'The request body is not valid JSON');
  }
  return value;
};

const refuseProtoKey = (key: string, value: unknown): unknown => {
  if (key === '__proto__') {
    throw new ServiceError('invalid_json', 'Object keys named "__proto__" are not accepted');
  }
  return value;
};

type MessageInputBody = Static<RequestSchemas['MessageInput']>;
type ContextPutBody = Static<RequestSchemas['ContextPut']>;
type PolicyBody = NonNullable<ContextPutBody['policy']>;

/** What a failure is reported as: its code and the noun opening the sentence ("Invalid message: ..."). */
interface Subject {
  readonly code: ErrorCode;
  readonly subject: string;
}

interface Check<T> extends Subject {
  readonly validate: ValidateFunction<T>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export const createValidators = (limits: RequestLimits): RequestValidators => {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false });
  const schemas = buildRequestSchemas(limits);
  const check = <S extends TObject>(schema: S, code: ErrorCode, subject: string): Check<Static<S>> => ({
    validate: ajv.compile<Static<S>>(schema),
    code,
    subject,
  });
  const contextPut = check(schemas.ContextPut, 'invalid_context_config', 'context config');
  const metadataPatch = check(schemas.MetadataPatch, 'invalid_metadata', 'metadata');
  const append = check(schemas.Append, 'invalid_message', 'message');
  const compact = check(schemas.Compact, 'invalid_replacement', 'replacement');
  const configs = buildPolicyConfigSchemas(limits);
  const policyConfigs = {
    last_n: ajv.compile(configs.last_n),
    skip_parts: ajv.compile(configs.skip_parts),
    manual: ajv.compile(configs.manual),
  };
  const tail = check(querySchemas.Tail, 'invalid_query', 'query');
  const messages = check(querySchemas.Messages, 'invalid_query', 'query');
  const llmContext = check(querySchemas.LlmContext, 'invalid_query', 'query');
  const jsonChecks = new JsonChecks(limits);

  return {
    contextPut(body) {
      if (!contextPut.validate(body)) throw contextPutError(contextPut, body, policyConfigs);
      return toContextPut(body, contextPut, jsonChecks);
    },
    metadataPatch(body) {
      const valid = validated(metadataPatch, body);
      jsonChecks.metadata(valid.metadata, 'metadata', metadataPatch);
      return valid.metadata;
    },
    append(body, idempotencyKeyHeader) {
      const valid = validated(append, body);
      const message = toMessageInput(valid.message, 'message', append, jsonChecks);
      const key = idempotencyKeyHeader === '' ? valid.message.id : idempotencyKeyHeader;
      if (key !== undefined) validateIdempotencyKey(key);
      const request: Mutable<AppendRequest> = { message };
      if (valid.if_version !== undefined) request.if_version = valid.if_version;
      if (key !== undefined) request.idempotency_key = key;
      return request;
    },
    compact(body) {
      const valid = validated(compact, body);
      const replacement = valid.replacement.map((item, index) =>
        toMessageInput(item, `replacement[${index}]`, compact, jsonChecks),
      );
      return valid.if_version === undefined ? { replacement } : { replacement, if_version: valid.if_version };
    },
    tailQuery(rawQuery) {
      const query = validated(tail, parseIntegerQuery(rawQuery, tailNames));
      return { limit: query.limit ?? 100, offset: query.offset ?? 0 };
    },
    messagesQuery(rawQuery) {
      const query = validated(messages, parseIntegerQuery(rawQuery, messagesNames));
      return { fromSeq: query.from_seq ?? 0, limit: query.limit ?? 100 };
    },
    llmContextQuery(rawQuery) {
      const query = validated(llmContext, parseIntegerQuery(rawQuery, llmContextNames));
      return {
        ...(query.budget_tokens === undefined ? {} : { budgetTokens: query.budget_tokens }),
        ...(query.if_version === undefined ? {} : { ifVersion: query.if_version }),
      };
    },
  };
};

const tailNames = Object.keys(querySchemas.Tail.properties);
const messagesNames = Object.keys(querySchemas.Messages.properties);
const llmContextNames = Object.keys(querySchemas.LlmContext.properties);

const validated = <T>(check: Check<T>, value: unknown): T => {
  if (!check.validate(value)) throw invalid(check, describeError(check.validate.errors?.[0], ''));
  return value;
};

const invalid = (subject: Subject, detail: string): ServiceError =>
  new ServiceError(subject.code, `Invalid ${subject.subject}: ${detail}`);

/** Depth and size limits of the free-form parts of a body. */
class JsonChecks {
  constructor(private readonly limits: RequestLimits) {}

  metadata(value: object, field: string, subject: Subject): void {
    const violation = checkJsonLimits(value, this.limits.jsonDepthMax, this.limits.metadataBytesMax);
    if (violation === 'too_large') {
      throw invalid(subject, `${field} exceeds ${this.limits.metadataBytesMax} bytes`);
    }
    if (violation === 'too_deep')
      throw invalid(subject, `${field} is nested deeper than ${this.limits.jsonDepthMax}`);
  }

  part(value: object, field: string, subject: Subject): void {
    if (checkJsonLimits(value, this.limits.jsonDepthMax, Infinity) !== undefined) {
      throw invalid(subject, `${field} is nested deeper than ${this.limits.jsonDepthMax}`);
    }
  }
}

const toMessageInput = (
  body: MessageInputBody,
  field: string,
  subject: Subject,
  jsonChecks: JsonChecks,
): MessageInput => {
  body.parts.forEach((part, index) => jsonChecks.part(part, `${field}.parts[${index}]`, subject));
  // Built field by field (not spread) because this runs once per append.
  const message: Mutable<MessageInput> = { role: body.role, parts: body.parts };
  if (body.metadata !== undefined) {
    jsonChecks.metadata(body.metadata, `${field}.metadata`, subject);
    message.metadata = body.metadata;
  }
  if (body.token_count !== undefined) message.token_count = body.token_count;
  if (body.id !== undefined) message.id = body.id;
  return message;
};

const toContextPut = (body: ContextPutBody, subject: Subject, jsonChecks: JsonChecks): ContextPut => {
  if (body.metadata !== undefined) jsonChecks.metadata(body.metadata, 'metadata', subject);
  return {
    ...(body.token_budget === undefined ? {} : { token_budget: body.token_budget }),
    ...(body.trigger_ratio === undefined ? {} : { trigger_ratio: body.trigger_ratio }),
    ...(body.policy === undefined ? {} : { policy: toPolicy(body.policy) }),
    ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
  };
};

/** Keeps only the documented config fields of each strategy. */
const toPolicy = (policy: PolicyBody): Policy => {
  switch (policy.strategy) {
    case 'last_n':
      return { strategy: 'last_n', config: { limit: policy.config.limit } };
    case 'skip_parts': {
      const config = policy.config ?? {};
      return {
        strategy: 'skip_parts',
        config: {
          ...(config.skip_kinds === undefined ? {} : { skip_kinds: config.skip_kinds }),
          ...(config.limit === undefined ? {} : { limit: config.limit }),
        },
      };
    }
    case 'manual':
      return { strategy: 'manual', config: {} };
  }
};

type PolicyConfigValidators = Record<(typeof policyStrategies)[number], ValidateFunction>;

/**
 * The policy is a union, and ajv reports a failed union as "must match a schema in anyOf"; for a
 * useful message the config is re-checked against the schema of the strategy the client named.
 */
const contextPutError = (
  check: Check<unknown>,
  body: unknown,
  policyConfigs: PolicyConfigValidators,
): ServiceError => {
  const first = check.validate.errors?.[0];
  const path = first?.instancePath ?? '';
  if (path !== '/policy' && !path.startsWith('/policy/')) return invalid(check, describeError(first, ''));
  return invalid(check, describePolicyError((body as { policy: unknown }).policy, policyConfigs));
};

const describePolicyError = (policy: unknown, policyConfigs: PolicyConfigValidators): string => {
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return 'policy must be object';
  const { strategy, config } = policy as { strategy?: unknown; config?: unknown };
  const strategies: readonly unknown[] = policyStrategies;
  if (!strategies.includes(strategy)) return `policy.strategy must be one of ${policyStrategies.join(', ')}`;
  const validate = policyConfigs[strategy as keyof PolicyConfigValidators];
  if (config === undefined) return 'policy.config is required';
  validate(config);
  return describeError(validate.errors?.[0], 'policy.config');
};

/** "message.parts[0].type must be string": a JSON pointer rendered as a field path. */
const describeError = (error: ErrorObject | undefined, prefix: string): string => {
  if (error === undefined) return `${prefix === '' ? 'body' : prefix} is invalid`;
  const path = joinPath(prefix, pointerToPath(error.instancePath));
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return `${joinPath(path, missing)} is required`;
  }
  return `${path === '' ? 'body' : path} ${error.message ?? 'is invalid'}`;
};

const pointerToPath = (pointer: string): string => {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    path = /^\d+$/.test(segment) ? `${path}[${segment}]` : joinPath(path, segment);
  }
  return path;
};

const joinPath = (path: string, segment: string): string => {
  if (segment === '') return path;
  return path === '' ? segment : `${path}.${segment}`;
};
