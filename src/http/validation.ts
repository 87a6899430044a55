// Turns untrusted request bodies and query strings into the domain values the service accepts, or
// throws a ServiceError with the contract's code and a sentence naming the offending field. Bodies
// are checked by ../api/body-checks.ts (the same checks the service applies to callers other than
// the gateway, so a body is checked once); query strings are parsed as integers here and checked
// against their TypeBox schemas.

import type { Static, TObject } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';

import { createBodyChecks, describeError } from '../api/body-checks.js';
import type { AppendRequest, CompactRequest, ContextPut, JsonObject } from '../api/domain.js';
import { ServiceError } from '../api/errors.js';
import type { RequestLimits } from '../api/schemas.js';
import { querySchemas } from '../api/schemas.js';
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
  // Two things cannot be stored faithfully, so they are refused: a key named "__proto__" (msgpackr
  // renames it on decode, and many clients mishandle it) and a lone surrogate (a `\ud800` escape
  // without its pair: stored as UTF-8 it comes back as U+FFFD, so two different ids or texts would
  // read back the same). Only a body that spells the key, or escapes characters (the only way JSON
  // text can carry a lone surrogate, or could spell the key), pays for the reviver that finds them.
  const reviver = text.includes('__proto__') || text.includes('\\u') ? refuseUnstorable : undefined;
  let value: unknown;
  try {
    value = JSON.parse(text, reviver) as unknown;
  } catch (error) {
    if (error instanceof ServiceError) throw error;
    throw new ServiceError('invalid_json', 'The request body is not valid JSON');
  }
  return value;
};

/** A UTF-16 code unit of a surrogate pair standing alone (with the u flag a pair is one code point). */
const loneSurrogate = /\p{Surrogate}/u;

const refuseUnstorable = (key: string, value: unknown): unknown => {
  if (key === '__proto__') {
    throw new ServiceError('invalid_json', 'Object keys named "__proto__" are not accepted');
  }
  if (loneSurrogate.test(key) || (typeof value === 'string' && loneSurrogate.test(value))) {
    throw new ServiceError(
      'invalid_json',
      'Strings must be well-formed Unicode: a \\u escape of a lone surrogate (D800-DFFF) is not accepted',
    );
  }
  return value;
};

export const createValidators = (limits: RequestLimits): RequestValidators => {
  const bodies = createBodyChecks(limits);
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false });
  const query = <S extends TObject>(schema: S): ValidateFunction<Static<S>> => ajv.compile<Static<S>>(schema);
  const tail = query(querySchemas.Tail);
  const messages = query(querySchemas.Messages);
  const llmContext = query(querySchemas.LlmContext);

  return {
    contextPut: (body) => bodies.contextPut(body),
    metadataPatch: (body) => bodies.metadataPatch(body),
    append: (body, idempotencyKeyHeader) =>
      bodies.append(body, idempotencyKeyHeader === '' ? undefined : idempotencyKeyHeader),
    compact: (body) => bodies.compact(body),
    tailQuery(rawQuery) {
      const valid = validatedQuery(tail, parseIntegerQuery(rawQuery, tailNames));
      return { limit: valid.limit ?? 100, offset: valid.offset ?? 0 };
    },
    messagesQuery(rawQuery) {
      const valid = validatedQuery(messages, parseIntegerQuery(rawQuery, messagesNames));
      return { fromSeq: valid.from_seq ?? 0, limit: valid.limit ?? 100 };
    },
    llmContextQuery(rawQuery) {
      const valid = validatedQuery(llmContext, parseIntegerQuery(rawQuery, llmContextNames));
      return {
        ...(valid.budget_tokens === undefined ? {} : { budgetTokens: valid.budget_tokens }),
        ...(valid.if_version === undefined ? {} : { ifVersion: valid.if_version }),
      };
    },
  };
};

const tailNames = Object.keys(querySchemas.Tail.properties);
const messagesNames = Object.keys(querySchemas.Messages.properties);
const llmContextNames = Object.keys(querySchemas.LlmContext.properties);

const validatedQuery = <T>(validate: ValidateFunction<T>, value: unknown): T => {
  if (!validate(value)) {
    throw new ServiceError('invalid_query', `Invalid query: ${describeError(validate.errors?.[0], '')}`);
  }
  return value;
};
