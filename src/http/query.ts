// Query strings of the read routes hold only integers. They are parsed here by hand (one pass over
// the raw string, no regex, no URLSearchParams allocation) and the ranges are then checked by the
// TypeBox query schemas, so "not a number" and "out of range" both answer 400 invalid_query.

import { ServiceError } from '../api/errors.js';

/** Longest digit run parsed: Number.MAX_SAFE_INTEGER has 16 digits (larger runs are refused unread). */
const digitsMax = 16;

/**
 * The first occurrence of each wanted name, parsed as a decimal integer (an optional leading "-"
 * lets the schema report a range error rather than a syntax error). Unknown names are ignored.
 */
export const parseIntegerQuery = (raw: string, names: readonly string[]): Record<string, number> => {
  const values: Record<string, number> = {};
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf('&', start);
    if (end === -1) end = raw.length;
    readPair(raw.slice(start, end), names, values);
    start = end + 1;
  }
  return values;
};

const readPair = (pair: string, names: readonly string[], values: Record<string, number>): void => {
  if (pair === '') return;
  const equals = pair.indexOf('=');
  const name = decode(equals === -1 ? pair : pair.slice(0, equals));
  if (!names.includes(name) || name in values) return;
  const text = equals === -1 ? '' : decode(pair.slice(equals + 1));
  values[name] = parseInteger(name, text);
};

const decode = (text: string): string => {
  if (!text.includes('%') && !text.includes('+')) return text;
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw new ServiceError('invalid_query', 'The query string has a malformed %-escape');
  }
};

const parseInteger = (name: string, text: string): number => {
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  if (digits.length === 0 || digits.length > digitsMax || !isDigits(digits)) {
    throw new ServiceError('invalid_query', `Query parameter ${name} must be an integer`);
  }
  const value = Number(digits);
  // A 16-digit run can exceed 2^53 - 1, where integers are no longer exact.
  if (!Number.isSafeInteger(value)) {
    throw new ServiceError('invalid_query', `Query parameter ${name} is out of range`);
  }
  // 0 - value, not -value: "-0" must not become negative zero.
  return negative ? 0 - value : value;
};

const isDigits = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 48 || code > 57) return false;
  }
  return true;
};
