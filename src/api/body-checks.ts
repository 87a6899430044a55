// The checks of request bodies, in one place: the TypeBox schemas (schemas.ts) compiled once with
// ajv, plus the depth and size limits of free-form JSON. Each check turns an untrusted value into the
// domain value the service accepts, rebuilt field by field so unknown fields (which the contract says
// are ignored) never reach the Raft log, or throws a ServiceError with the contract's code and a
// sentence naming the offending field.
//
// The gateway checks bodies as they arrive; the service checks what it is given, because not every
// caller is the gateway. A value is checked once: every domain value these checks build is recorded
// (a WeakSet, so the record dies with the value), and `ensure*` passes a recorded value straight
// through, so a request that came through the gateway is not checked a second time.

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
} from './domain.js';
import type { ErrorCode } from './errors.js';
import { ServiceError } from './errors.js';
import { validateIdempotencyKey } from './identifiers.js';
import type { RequestLimits, RequestSchemas } from './schemas.js';
import { buildPolicyConfigSchemas, buildRequestSchemas, policyStrategies } from './schemas.js';
import { checkJsonLimits } from './json-limits.js';

export interface BodyChecks {
  /** PUT /v1/contexts/:id. */
  contextPut(body: unknown): ContextPut;
  /** PATCH /metadata: the body `{metadata}`; returns the patch. */
  metadataPatch(body: unknown): JsonObject;
  /** POST /messages; `idempotencyKey` is the Idempotency-Key header when sent (message.id otherwise). */
  append(body: unknown, idempotencyKey: string | undefined): AppendRequest;
  /** POST /compact. */
  compact(body: unknown): CompactRequest;
  /** The service's entries: a value built by the checks above passes as is; any other is checked. */
  ensureContextPut(value: ContextPut): ContextPut;
  ensureMetadataPatch(value: JsonObject): JsonObject;
  ensureAppend(value: AppendRequest): AppendRequest;
  ensureCompact(value: CompactRequest): CompactRequest;
}

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

/**
 * Every domain value a check built, in this process. Shared by all instances because the gateway and
 * the service each build their own; a node gives both the same limits, so a value one of them checked
 * meets the other's rules.
 */
const checked = new WeakSet<object>();
const record = <T extends object>(value: T): T => {
  checked.add(value);
  return value;
};

export const createBodyChecks = (limits: RequestLimits): BodyChecks => {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false });
  const schemas = buildRequestSchemas(limits);
  const check = <S extends TObject>(schema: S, code: ErrorCode, subject: string): Check<Static<S>> => ({
    validate: ajv.compile<Static<S>>(schema),
    code,
    subject,
  });
  const contextPutCheck = check(schemas.ContextPut, 'invalid_context_config', 'context config');
  const metadataPatchCheck = check(schemas.MetadataPatch, 'invalid_metadata', 'metadata');
  const appendCheck = check(schemas.Append, 'invalid_message', 'message');
  const compactCheck = check(schemas.Compact, 'invalid_replacement', 'replacement');
  const configs = buildPolicyConfigSchemas(limits);
  const policyConfigs = {
    last_n: ajv.compile(configs.last_n),
    skip_parts: ajv.compile(configs.skip_parts),
    manual: ajv.compile(configs.manual),
  };
  const jsonChecks = new JsonChecks(limits);

  const checks: BodyChecks = {
    contextPut(body) {
      if (!contextPutCheck.validate(body)) throw contextPutError(contextPutCheck, body, policyConfigs);
      return record(toContextPut(body, contextPutCheck, jsonChecks));
    },
    metadataPatch(body) {
      const valid = validated(metadataPatchCheck, body);
      jsonChecks.metadata(valid.metadata, 'metadata', metadataPatchCheck);
      return record(valid.metadata);
    },
    append(body, idempotencyKey) {
      const valid = validated(appendCheck, body);
      const message = toMessageInput(valid.message, 'message', appendCheck, jsonChecks);
      const key = idempotencyKey ?? valid.message.id;
      if (key !== undefined) validateIdempotencyKey(key);
      const request: Mutable<AppendRequest> = { message };
      if (valid.if_version !== undefined) request.if_version = valid.if_version;
      if (key !== undefined) request.idempotency_key = key;
      return record(request);
    },
    compact(body) {
      const valid = validated(compactCheck, body);
      const replacement = valid.replacement.map((item, index) =>
        toMessageInput(item, `replacement[${index}]`, compactCheck, jsonChecks),
      );
      return record(
        valid.if_version === undefined ? { replacement } : { replacement, if_version: valid.if_version },
      );
    },
    ensureContextPut: (value) => (checked.has(value) ? value : checks.contextPut(value)),
    ensureMetadataPatch: (value) => (checked.has(value) ? value : checks.metadataPatch({ metadata: value })),
    ensureAppend: (value) =>
      checked.has(value)
        ? value
        : checks.append({ message: value.message, if_version: value.if_version }, value.idempotency_key),
    ensureCompact: (value) => (checked.has(value) ? value : checks.compact(value)),
  };
  return checks;
};

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
export const describeError = (error: ErrorObject | undefined, prefix: string): string => {
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
