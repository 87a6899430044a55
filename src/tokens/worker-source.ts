// The tokenizer worker's program. It is passed to `new Worker(source, { eval: true })` as text
// rather than as a file so the same code runs from the compiled dist/ tree and from the TypeScript
// sources under vitest (a worker thread does not go through vitest's transform, and Node 20 cannot
// run .ts files). It is kept tiny for that reason; the pool (tokenizer-pool.ts) holds the logic.
//
// Protocol: the worker posts {type: "ready"} once its encoding is loaded, then counts each
// {id, texts, progress} in order: `progress` is an Int32Array over shared memory whose slot i + 1
// receives text i's count (-1 where counting threw) and whose slot 0 then says how many texts are
// done. When all are, it posts {type: "done", id}. Shared progress is what lets the pool replace a
// worker that overran its time budget without losing the counts it already made (tokenizer-pool.ts).
//
// Each text is counted in the slices long-runs.ts chooses, so its cost is linear in its length.
//
// Special-token strings such as "<|endoftext|>" in user text count as ordinary text, exactly like
// js-tiktoken's encode(text, [], []): a chat message can neither smuggle in a control token nor make
// counting throw.

import { longRunCuts, longRunLimits } from './long-runs.js';

export interface WorkerData {
  /** Absolute path of gpt-tokenizer's CommonJS module for one encoding. */
  readonly modulePath: string;
  /** Absolute path of gpt-tokenizer's BytePairEncodingCore module (patched, see below). */
  readonly corePath: string;
  /** Fault injection for tests: a text equal to this makes the worker spin forever. */
  readonly stallMarker?: string;
}

export type WorkerReply = { readonly type: 'ready' } | { readonly type: 'done'; readonly id: number };

export interface WorkerBatch {
  readonly id: number;
  readonly texts: readonly string[];
  /** texts.length + 1 slots over a SharedArrayBuffer: [texts done, count of text 0, ...]. */
  readonly progress: Int32Array;
}

export const workerSource = `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
// gpt-tokenizer 4.0.0 bug: it looks up a byte sequence by decoding it with a TextDecoder, which drops a
// leading U+FEFF (bytes EF BB BF), so the ranks of tokens starting with a BOM ("\\uFEFF", "\\uFEFFusing",
// ...) are never found and such text is split into too many tokens (js-tiktoken: 1 for "\\uFEFF",
// gpt-tokenizer: 2). Those tokens are all in its table of non-UTF-8 byte sequences: look them up there.
const core = require(workerData.corePath).BytePairEncodingCore.prototype;
const rankFromBytes = core.getBpeRankFromBytes;
core.getBpeRankFromBytes = function (key) {
  if (key.length >= 3 && key[0] === 0xef && key[1] === 0xbb && key[2] === 0xbf) {
    const index = this.binarySearch(key);
    return index === -1 ? undefined : this.bytePairNonUtfSortedEncoder[index][1];
  }
  return rankFromBytes.call(this, key);
};
const { countTokens } = require(workerData.modulePath);
const options = { disallowedSpecial: new Set() };
${longRunCuts.toString()}
const limits = ${JSON.stringify(longRunLimits)};
const countText = (text) => {
  const cuts = longRunCuts(text, limits);
  let total = 0;
  let start = 0;
  for (const cut of cuts) {
    total += countTokens(text.slice(start, cut), options);
    start = cut;
  }
  return total + countTokens(start === 0 ? text : text.slice(start), options);
};
const stallMarker = workerData.stallMarker;
parentPort.on('message', (batch) => {
  const progress = batch.progress;
  for (let i = 0; i < batch.texts.length; i++) {
    const text = batch.texts[i];
    if (stallMarker !== undefined && text === stallMarker) for (;;);
    let count;
    try {
      count = countText(text);
    } catch {
      count = -1;
    }
    progress[i + 1] = count;
    Atomics.store(progress, 0, i + 1);
  }
  parentPort.postMessage({ type: 'done', id: batch.id });
});
parentPort.postMessage({ type: 'ready' });
`;
