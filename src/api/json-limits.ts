// Depth and size checks on parsed JSON values (message parts, metadata). JSON.parse accepts any
// nesting, but JSON.stringify, msgpack and the token estimator recurse and would overflow the stack
// on a deep value from a hostile body; and metadata is kept in memory per context, so its size is
// capped. The walk stops at the first violation, so its cost is bounded by the limits, not the input.

export type JsonLimitViolation = 'too_deep' | 'too_large' | undefined;

interface Walk {
  readonly depthMax: number;
  readonly bytesMax: number;
  bytes: number;
}

/** Checks nesting (the value itself is depth 1) and, when bytesMax is finite, compact-JSON UTF-8 size. */
export const checkJsonLimits = (value: unknown, depthMax: number, bytesMax: number): JsonLimitViolation => {
  const walk: Walk = { depthMax, bytesMax, bytes: 0 };
  return visit(value, 1, walk);
};

const visit = (value: unknown, depth: number, walk: Walk): JsonLimitViolation => {
  if (typeof value !== 'object' || value === null) return addBytes(walk, scalarBytes(value, walk));
  if (depth > walk.depthMax) return 'too_deep';
  if (Array.isArray(value)) return visitArray(value, depth, walk);
  return visitObject(value as Record<string, unknown>, depth, walk);
};

const visitArray = (items: readonly unknown[], depth: number, walk: Walk): JsonLimitViolation => {
  const brackets = addBytes(walk, 1 + items.length);
  if (brackets !== undefined) return brackets;
  for (const item of items) {
    const violation = visit(item, depth + 1, walk);
    if (violation !== undefined) return violation;
  }
  return undefined;
};

const visitObject = (object: Record<string, unknown>, depth: number, walk: Walk): JsonLimitViolation => {
  for (const key in object) {
    // A key costs its quotes, colon and separator besides its text.
    const keyViolation = addBytes(walk, scalarBytes(key, walk) + 2);
    if (keyViolation !== undefined) return keyViolation;
    const violation = visit(object[key], depth + 1, walk);
    if (violation !== undefined) return violation;
  }
  return addBytes(walk, 2);
};

const scalarBytes = (value: unknown, walk: Walk): number => {
  if (walk.bytesMax === Infinity) return 0;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8') + 2;
  if (typeof value === 'number') return String(value).length;
  return value === null || value === true ? 4 : 5;
};

const addBytes = (walk: Walk, bytes: number): JsonLimitViolation => {
  walk.bytes += bytes;
  return walk.bytes > walk.bytesMax ? 'too_large' : undefined;
};
