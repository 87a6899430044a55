// The "tiktoken:<model>" estimator: exact BPE counts for the model's encoding, computed by the
// worker pool so that tokenization never runs on the event loop.
//
// Measured (bench append, 32-64 connections, 2 cores): counting 300-character messages inline with
// the same gpt-tokenizer encoder cost the event loop more CPU per append than the pool's batched
// postMessage round trips (~230-260 vs ~150-180 µs of main-thread CPU per append in total), and the
// event loop is the bottleneck, so every text goes to the pool.
import type { MessagePart } from '../api/domain.js';
import type { SupportedEncoding } from './estimator-spec.js';
import { partText } from './part-text.js';
import { TokenizerPool, type TokenizerPoolOptions } from './tokenizer-pool.js';
import type { TokenEstimator } from './types.js';

export interface TiktokenEstimator extends TokenEstimator {
  /** The pool behind the estimator, for stats (metrics) and fault injection (tests). */
  readonly pool: TokenizerPool;
}

export const createTiktokenEstimator = async (
  model: string,
  encoding: SupportedEncoding,
  poolOptions: Omit<TokenizerPoolOptions, 'encoding'>,
): Promise<TiktokenEstimator> => {
  const pool = await TokenizerPool.start({ ...poolOptions, encoding });
  return {
    name: `tiktoken:${model}`,
    pool,
    countParts: (parts: readonly MessagePart[]) => pool.count(parts.map(partText)),
    close: () => pool.close(),
  };
};
