// Proves the worker pool's counts (gpt-tokenizer) equal js-tiktoken's, the reference the contract
// names, for o200k_base and cl100k_base: fast-check generates ASCII, Unicode, emoji, whitespace runs,
// code, lone surrogates, special-token strings and long repeats, plus chat-like text and JSON parts,
// and every count is compared with js-tiktoken's encode(text, [], []).length.
import fc from 'fast-check';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MessagePart } from '../../src/api/domain.js';
import { createTokenEstimator } from '../../src/tokens/create-token-estimator.js';
import { TokenizerPool } from '../../src/tokens/tokenizer-pool.js';
import type { TokenEstimator } from '../../src/tokens/types.js';
import {
  anyText,
  asciiText,
  chatText,
  codeText,
  emojiText,
  graphemeText,
  longRepeat,
  unicodeText,
  utf16Text,
  whitespaceRuns,
} from './text-arbitraries.js';

const encodings = [
  { encoding: 'o200k_base', ranks: o200k },
  { encoding: 'cl100k_base', ranks: cl100k },
] as const;

describe.each(encodings)('$encoding counts equal js-tiktoken', ({ encoding, ranks }) => {
  const oracle = new Tiktoken(ranks);
  // Special-token strings count as plain text, as the service must accept any user text.
  const reference = (text: string): number => oracle.encode(text, [], []).length;
  let pool: TokenizerPool;

  beforeAll(async () => {
    pool = await TokenizerPool.start({ encoding, workers: 1, queuePartsMax: 100_000 });
  });
  afterAll(async () => {
    await pool.close();
  });

  const families = {
    ascii: asciiText,
    unicode: unicodeText,
    graphemes: graphemeText,
    'lone surrogates': utf16Text,
    emoji: emojiText,
    'whitespace runs': whitespaceRuns,
    code: codeText,
    'chat-like text': chatText,
    mixed: anyText,
  };

  it.each(Object.entries(families))('on %s', async (_name, arbitrary) => {
    await fc.assert(
      fc.asyncProperty(fc.array(arbitrary, { minLength: 1, maxLength: 25 }), async (texts) => {
        expect(await pool.count(texts)).toEqual(texts.map(reference));
      }),
      { numRuns: 60 },
    );
  });

  it('on long repeats', async () => {
    await fc.assert(
      fc.asyncProperty(longRepeat, async (text) => {
        expect(await pool.count([text])).toEqual([reference(text)]);
      }),
      { numRuns: 25 },
    );
  });

  it('on fixed edge cases', async () => {
    const texts = [
      '',
      ' ',
      '<|endoftext|>',
      'a<|endoftext|>b',
      '\ud800',
      '\udc00x',
      'x'.repeat(3_000),
      '\u0000',
      // Tokens that start with a BOM (gpt-tokenizer 4.0.0 misses them unless patched: worker-source.ts).
      '\ufeff',
      '\ufeff\ufeff',
      'a\ufeff',
      '\ufeff ',
      '\ufeffusing System;',
      '\ufeff//',
      '\ufeff#',
      '\ufeff\n\n',
      '\ufeffnamespace',
      '\ufeff출장안마',
    ];
    expect(await pool.count(texts)).toEqual(texts.map(reference));
  });

  it('on a 20,000-character run (js-tiktoken is quadratic here, so its count is fixed: 2,500)', async () => {
    // Measured once with js-tiktoken (70 s); gpt-tokenizer takes well under a second.
    expect(await pool.count(['x'.repeat(20_000)])).toEqual([2_500]);
  });
});

describe('tiktoken:gpt-4o estimator on message parts', () => {
  const oracle = new Tiktoken(o200k);
  let estimator: TokenEstimator;

  beforeAll(async () => {
    estimator = await createTokenEstimator('tiktoken:gpt-4o', { workers: 1, queuePartsMax: 10_000 });
  });
  afterAll(async () => {
    await estimator.close();
  });

  const textPart = chatText.map((text): MessagePart => ({ type: 'text', text }));
  const jsonPart = fc
    .tuple(
      fc.constantFrom('tool-call', 'tool-result', 'reasoning', 'file', 'data-x'),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
    )
    .map(([type, rest]): MessagePart => ({ ...(rest as Record<string, never>), type }));
  // A "text" part without a string text is counted on its JSON like any other part.
  const oddTextPart = fc.integer().map((n): MessagePart => ({ type: 'text', text: n }));

  it('counts text parts on their text and other parts on their compact JSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(textPart, jsonPart, oddTextPart), { maxLength: 8 }),
        async (parts) => {
          const expected = parts.map(
            (part) =>
              oracle.encode(
                part.type === 'text' && typeof part['text'] === 'string'
                  ? part['text']
                  : JSON.stringify(part),
                [],
                [],
              ).length,
          );
          expect(await estimator.countParts(parts)).toEqual(expected);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('is named after its spec', () => {
    expect(estimator.name).toBe('tiktoken:gpt-4o');
  });
});
