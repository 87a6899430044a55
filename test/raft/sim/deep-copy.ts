// Copies plain message data (objects, arrays, byte arrays, primitives), so nodes never share memory
// through the simulated network, as they could not through a real one. Unlike structuredClone, a
// small Buffer is copied alone rather than with the whole 8 KiB pool it was cut from.

export const deepCopy = <T>(value: T): T => copyValue(value) as T;

const copyValue = (value: unknown): unknown => {
  if (value instanceof Uint8Array) return Uint8Array.from(value);
  if (Array.isArray(value)) return value.map(copyValue);
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) copy[key] = copyValue(field);
    return copy;
  }
  return value;
};
