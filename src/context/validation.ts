// The rules a context's configuration must meet for the state machine to rely on them, checked when
// a replicated put_context command is decoded (commands.ts), whatever node proposed it; and the
// service's range check of query integers. Request bodies are checked by ../api/body-checks.ts.

import type { ContextPut, JsonObject, Policy } from '../api/domain.js';
import { ServiceError } from '../api/errors.js';

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

const configError = (field: string, rule: string): ServiceError =>
  new ServiceError('invalid_context_config', `${field} ${rule}`);

/** The PUT body with defaults-free, normalized values (a policy always has a config object). */
export const validateContextPut = (body: ContextPut): ContextPut => {
  const { token_budget, trigger_ratio, policy, metadata } = body;
  if (token_budget !== undefined && !(isCount(token_budget) && token_budget > 0)) {
    throw configError('token_budget', 'must be an integer > 0');
  }
  if (
    trigger_ratio !== undefined &&
    !(typeof trigger_ratio === 'number' && trigger_ratio > 0 && trigger_ratio <= 1)
  ) {
    throw configError('trigger_ratio', 'must be a number in (0, 1]');
  }
  if (metadata !== undefined && !isObject(metadata)) throw configError('metadata', 'must be an object');
  return {
    ...(token_budget === undefined ? {} : { token_budget }),
    ...(trigger_ratio === undefined ? {} : { trigger_ratio }),
    ...(policy === undefined ? {} : { policy: validatePolicy(policy) }),
    ...(metadata === undefined ? {} : { metadata }),
  };
};

const validatePolicy = (policy: Policy): Policy => {
  if (!isObject(policy)) throw configError('policy', 'must be an object');
  const config: unknown = (policy as { config?: unknown }).config ?? {};
  if (!isObject(config)) throw configError('policy.config', 'must be an object');
  const { strategy } = policy;
  if (strategy !== 'last_n' && strategy !== 'skip_parts' && strategy !== 'manual') {
    throw configError('policy.strategy', 'must be one of last_n, skip_parts, manual');
  }
  if (config.limit !== undefined && !(isCount(config.limit) && config.limit >= 1)) {
    throw configError('policy.config.limit', 'must be an integer >= 1');
  }
  const kinds = config.skip_kinds;
  if (
    kinds !== undefined &&
    !(Array.isArray(kinds) && kinds.every((kind) => typeof kind === 'string' && kind !== ''))
  ) {
    throw configError('policy.config.skip_kinds', 'must be a list of non-empty strings');
  }
  return { strategy, config };
};

/** A query integer within [min, max], else 400 invalid_query naming it. */
export const queryInteger = (name: string, value: number, min: number, max: number): number => {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ServiceError('invalid_query', `${name} must be an integer in [${min}, ${max}]`);
  }
  return value;
};
