// Text generators for the token-count property tests: the kinds of input where two BPE
// implementations are most likely to disagree (pre-tokenizer regex edges, multi-byte UTF-8,
// whitespace runs, special-token strings, lone surrogates, very long runs).
import fc from 'fast-check';

const emoji = ['😀', '👩‍👩‍👧‍👦', '👍🏽', '🇳🇴', '🏳️‍🌈', '❤️', '🤖', '🧑‍💻', '✨', '🔥'];
const specialTokens = [
  '<|endoftext|>',
  '<|im_start|>',
  '<|im_end|>',
  '<|fim_prefix|>',
  '<|endofprompt|>',
  '<|',
];
const words = [
  'the',
  'a',
  'model',
  'context',
  'token',
  'budget',
  "I'm",
  "don't",
  "we'll",
  "it's",
  "They'RE",
  'naïve',
  'café',
  'Straße',
  'über',
  'こんにちは',
  '世界',
  'привет',
  'مرحبا',
  'שלום',
  'नमस्ते',
  '안녕하세요',
  '1234567',
  '3.14159',
  '2025-01-01T00:00:00Z',
  'https://example.com/a?b=c&d=e',
  'user@example.com',
  '#',
  '##',
  '**bold**',
  '`code`',
  '- item',
  '1.',
  '(see above)',
  '...',
  '—',
  '“quoted”',
  "'single'",
  '$100',
  '100%',
  '±',
  '∑',
];
const codeSnippets = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'const x = await fetch(`/v1/contexts/${id}`);\n',
  'def f(x):\n    return [i**2 for i in range(x) if i % 2 == 0]\n',
  '```ts\nexport const y: number[] = [];\n```',
  '<div class="a">&nbsp;</div>',
  'SELECT * FROM messages WHERE seq > $1 ORDER BY seq;',
  '\t\tif (a != b && c <= d) { x++; }\r\n',
  '{"role":"user","parts":[{"type":"text","text":"hi"}]}',
];
const whitespace = [' ', '  ', '\n', '\n\n', '\t', '\r\n', '\u00a0', '\u3000', '\u2028', '   \n  '];

/** Any UTF-16 code unit, so lone surrogates (which JSON can carry) appear too. */
const utf16Unit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

export const asciiText = fc.string({ unit: 'binary-ascii', maxLength: 200 });
export const unicodeText = fc.string({ unit: 'binary', maxLength: 120 });
export const graphemeText = fc.string({ unit: 'grapheme', maxLength: 80 });
export const utf16Text = fc.string({ unit: utf16Unit, maxLength: 80 });
export const emojiText = fc
  .array(fc.oneof(fc.constantFrom(...emoji), fc.constantFrom(...whitespace)), { maxLength: 30 })
  .map((p) => p.join(''));
export const whitespaceRuns = fc
  .array(
    fc.tuple(
      fc.constantFrom(...whitespace),
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom('', 'x', 'word', '1'),
    ),
    { maxLength: 12 },
  )
  .map((runs) => runs.map(([space, times, tail]) => space.repeat(times) + tail).join(''));
export const codeText = fc
  .array(fc.constantFrom(...codeSnippets, ...whitespace), { maxLength: 12 })
  .map((p) => p.join(''));
export const longRepeat = fc
  .tuple(
    fc.oneof(
      fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 4 }),
      fc.constantFrom('ab', ' ', '🙂', '0', 'x '),
    ),
    fc.integer({ min: 100, max: 1500 }),
  )
  .map(([piece, times]) => piece.repeat(times));
export const chatText = fc
  .array(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...words) },
      { weight: 1, arbitrary: fc.constantFrom(...specialTokens) },
      { weight: 1, arbitrary: fc.constantFrom(...emoji) },
    ),
    { maxLength: 120 },
  )
  .chain((parts) =>
    fc
      .array(fc.constantFrom(' ', ' ', ' ', ', ', '. ', '\n', '! ', '? ', ''), {
        minLength: parts.length,
        maxLength: parts.length,
      })
      .map((seps) => parts.map((p, i) => p + (seps[i] ?? ' ')).join('')),
  );

/** A mix of everything above, concatenated: boundaries between kinds are where regexes differ. */
export const anyText = fc
  .array(
    fc.oneof(asciiText, unicodeText, graphemeText, utf16Text, emojiText, whitespaceRuns, codeText, chatText),
    { minLength: 1, maxLength: 4 },
  )
  .map((pieces) => pieces.join(''));

/**
 * Deterministic pseudo-random lowercase letters (xorshift32): one long "word" whose BPE cost is the
 * worst case, the same on every run so a failure replays.
 */
export const randomLetters = (length: number, seed: number): string => {
  let state = seed >>> 0 || 1;
  const letters = new Array<string>(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    letters[i] = String.fromCharCode(97 + ((state >>> 0) % 26));
  }
  return letters.join('');
};
