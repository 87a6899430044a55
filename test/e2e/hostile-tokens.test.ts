// The request that used to freeze a node: an append whose one text part is a single "word" of
// 1,000,000 letters, counted by the server (no token_count). BPE merging is quadratic in a word's
// length, so it took 598 s, and every other server-counted append on the node waited behind it. Now
// the node answers it with an exact count, and a two-word append sent meanwhile is answered first.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { randomLetters } from '../tokens/text-arbitraries.js';
import { startTestNode, type TestNode } from './node-harness.js';

let node: TestNode;

beforeAll(async () => {
  // One tokenizer worker, as on a 2-core host: nothing else could count while it is busy.
  node = await startTestNode({
    env: { FASTPACA_TOKEN_ESTIMATOR: 'tiktoken:gpt-4o', FASTPACA_TOKENIZER_WORKERS: '1' },
  });
}, 60_000);

afterAll(async () => {
  await node.destroy();
});

interface Answer {
  readonly status: number;
  readonly body: { readonly seq?: number; readonly token_estimate?: number };
}

const append = async (id: string, text: string): Promise<Answer> => {
  const response = await fetch(`${node.base}/v1/contexts/${id}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
};

const createContext = async (id: string): Promise<void> => {
  const response = await fetch(`${node.base}/v1/contexts/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token_budget: 1_000_000 }),
  });
  expect(response.status).toBe(201);
};

describe('a server-counted append of one enormous word', () => {
  it('of 1,000,000 copies of "a" is answered with its exact count', async () => {
    await createContext('huge-a');
    const answer = await append('huge-a', 'a'.repeat(1_000_000));
    expect(answer.status).toBe(201);
    // "aaaaaaaa" is one token, and every slice and segment boundary falls on a multiple of 8.
    expect(answer.body.token_estimate).toBe(125_000);
  }, 60_000);

  it('of 1,000,000 random letters is answered, and a short append sent meanwhile is answered first', async () => {
    await createContext('huge-random');
    await createContext('small');
    const order: string[] = [];
    const huge = append('huge-random', randomLetters(1_000_000, 12345)).then((answer) => {
      order.push('huge');
      return answer;
    });
    // Counting it takes the only worker about a second: send the short one while that runs.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const small = await append('small', 'two words');
    order.push('small');
    expect(small.status).toBe(201);
    expect(small.body.token_estimate).toBe(2);
    const big = await huge;
    expect(big.status).toBe(201);
    expect(order).toEqual(['small', 'huge']);
    // About 1.9 letters per token for random lowercase text (o200k).
    expect(big.body.token_estimate).toBeGreaterThan(400_000);
    expect(big.body.token_estimate).toBeLessThan(600_000);
  }, 60_000);
});

/**
 * Text built to hurt a tokenizer: long runs of one class, combining marks, joiners, surrogate pairs.
 * (An unpaired surrogate never reaches the tokenizer: the body is refused first, tested below.)
 */
const pathologicalText = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'a',
        'Zz',
        '字',
        '\u0301',
        'e\u0301',
        '!',
        '🙂',
        '👩\u200d👩\u200d👧',
        ' ',
        '\n',
        '\t ',
        '9',
        '<|endoftext|>',
        'ab1',
        "'s",
      ),
      fc.integer({ min: 1, max: 40_000 }),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((runs) => runs.map(([unit, times]) => unit.repeat(times)).join(''))
  .filter((text) => Buffer.byteLength(text) < 900 * 1024);

describe('server-counted appends of pathological text', () => {
  it('are all answered 201 with a positive count, and the node keeps answering', async () => {
    await createContext('pathological');
    await fc.assert(
      fc.asyncProperty(pathologicalText, async (text) => {
        const answer = await append('pathological', text);
        expect(answer.status).toBe(201);
        expect(answer.body.token_estimate).toBeGreaterThan(0);
      }),
      { numRuns: 25 },
    );
    expect((await append('pathological', 'still here')).body.token_estimate).toBe(2);
  }, 120_000);

  it('refuses a text with an unpaired surrogate (400) before counting it', async () => {
    await createContext('unpaired');
    expect((await append('unpaired', `a ${'\ud800'.repeat(1000)} b`)).status).toBe(400);
  });
});
