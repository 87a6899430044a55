// The tokenizer worker's program. It is passed to `new Worker(source, { eval: true })` as text
// rather than as a file so the same code runs from the compiled dist/ tree and from the TypeScript
// sources under vitest (a worker thread does not go through vitest's transform, and Node 20 cannot
// run .ts files). It is kept tiny for that reason; the pool (tokenizer-pool.ts) holds the logic.
//
// Protocol: the worker posts {type: "ready"} once its encoding is loaded, then answers each
// {id, texts} with {type: "counts", id, counts}: an Int32Array (transferred, not copied) with one
// count per text, or -1 where counting threw.
//
// Special-token strings such as "<|endoftext|>" in user text count as ordinary text, exactly like
// js-tiktoken's encode(text, [], []): a chat message can neither smuggle in a control token nor make
// counting throw.

export interface WorkerData {
  /** Absolute path of gpt-tokenizer's CommonJS module for one encoding. */
  readonly modulePath: string;
  /** Absolute path of gpt-tokenizer's BytePairEncodingCore module (patched, see below). */
  readonly corePath: string;
}

export type WorkerReply =
  { readonly type: 'ready' } | { readonly type: 'counts'; readonly id: number; readonly counts: Int32Array };

export interface WorkerBatch {
  readonly id: number;
  readonly texts: readonly string[];
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
parentPort.on('message', (batch) => {
  const counts = new Int32Array(batch.texts.length);
  for (let i = 0; i < batch.texts.length; i++) {
    try {
      counts[i] = countTokens(batch.texts[i], options);
    } catch {
      counts[i] = -1;
    }
  }
  parentPort.postMessage({ type: 'counts', id: batch.id, counts }, [counts.buffer]);
});
parentPort.postMessage({ type: 'ready' });
`;
