// pgSafeJson's fast path (a substring search before the regex) must give exactly what replacing
// every NUL and unpaired surrogate, in keys and values, then stringifying gives (pgSafeValue, the
// walk it skips), and what PostgreSQL parses from it must hold neither. Strings are drawn from the
// characters that matter (backslashes, `u`, hex digits, NUL, both halves of surrogate pairs, whole
// pairs, other control characters) so that literal `\u` text, real escapes and near misses all occur.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pgSafeJson, pgSafeValue } from '../../archiver/archive-store.js';

const tricky = fc
  .array(
    fc.constantFrom(
      '\\',
      'u',
      'd',
      '8',
      'c',
      '0',
      'a',
      ' ',
      '"',
      '\u0000',
      '\u0001',
      '\u001f',
      '\ud800',
      '\udbff',
      '\udc00',
      '\udfff',
      '\ud83d\ude00',
      'é',
    ),
    { maxLength: 12 },
  )
  .map((chars) => chars.join(''));

const json = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    tricky,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(tricky, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** The definition: every string (keys too) made storable by walking the value, then stringified. */
const reference = (value: unknown): string => JSON.stringify(pgSafeValue(value));

// NUL is matched on purpose: PostgreSQL refuses it.
// eslint-disable-next-line no-control-regex
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Every string of a parsed JSON value, keys too. */
const stringsOf = (value: unknown): string[] => {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, inner]) => [key, ...stringsOf(inner)]);
  }
  return [];
};

describe('pgSafeJson', () => {
  it('equals the definition on values full of backslashes, u, NUL and surrogate halves', () => {
    fc.assert(
      fc.property(json, (value) => {
        expect(pgSafeJson(value)).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves no NUL and no unpaired surrogate in any string PostgreSQL parses', () => {
    fc.assert(
      fc.property(json, (value) => {
        for (const text of stringsOf(JSON.parse(pgSafeJson(value)))) expect(text).not.toMatch(unstorable);
      }),
      { numRuns: 500 },
    );
  });

  it('returns plain text unchanged, and a literal backslash-u in the text stays as written', () => {
    const rows = [{ text: 'no escapes here' }, { text: 'a literal \\u0000 and \\ud800 in code' }];
    expect(pgSafeJson(rows)).toBe(JSON.stringify(rows));
    expect(pgSafeJson({ text: 'a\u0000b\ud800' })).toBe(JSON.stringify({ text: 'a\ufffdb\ufffd' }));
  });
});
