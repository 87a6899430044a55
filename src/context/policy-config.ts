// Defaults of the window policies, and reading a stored policy's config. These constants are part
// of the replicated semantics: every replica must read a config the same way, so changing one is a
// state-machine format change, not a tweak.

import type { JsonObject, Policy } from '../api/domain.js';

export const defaultTriggerRatio = 0.7;
export const defaultLastNLimit = 200;
export const defaultSkipKinds: readonly string[] = ['tool', 'reasoning'];
export const defaultPolicy: Policy = { strategy: 'last_n', config: { limit: defaultLastNLimit } };

const configOf = (policy: Policy): JsonObject => policy.config ?? {};

/** Messages a policy keeps at most; at least 1 (a policy never empties the window). */
export const limitOf = (policy: Policy): number => {
  const limit = configOf(policy).limit;
  return typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 ? limit : defaultLastNLimit;
};

/** skip_parts' prefixes, sorted and distinct. */
export const skipKindsOf = (policy: Policy): readonly string[] => {
  const kinds = configOf(policy).skip_kinds;
  // An empty prefix would match every part; the schema forbids it, and apply ignores it.
  const list = Array.isArray(kinds)
    ? kinds.filter((kind): kind is string => typeof kind === 'string' && kind.length > 0)
    : defaultSkipKinds;
  return sortedUnion(list, []);
};

export const sortedUnion = (a: readonly string[], b: readonly string[]): readonly string[] =>
  [...new Set([...a, ...b])].sort();

export const sameKinds = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((kind, index) => kind === b[index]);
