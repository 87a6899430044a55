// The one entry point the node uses: FASTPACA_TOKEN_ESTIMATOR → a started TokenEstimator. An
// unknown spec or model fails here, at start-up, with a message naming what is wrong.
import { createChars4Estimator } from './chars4.js';
import { parseEstimatorSpec } from './estimator-spec.js';
import { createTiktokenEstimator } from './tiktoken-estimator.js';
import type { TokenizerPoolOptions } from './tokenizer-pool.js';
import type { TokenEstimator } from './types.js';

export interface TokenEstimatorOptions {
  /** Worker threads for tiktoken estimators (config.tokenizerWorkers). */
  readonly workers: number;
  /** Parts waiting for a worker before counting refuses with 503 overloaded (config.tokenizerQueueMax). */
  readonly queuePartsMax: number;
  /** How long a worker may take over one batch before it is replaced (config.tokenizerBatchTimeoutMs). */
  readonly batchTimeoutMs?: number;
  readonly onWorkerExit?: TokenizerPoolOptions['onWorkerExit'];
  readonly onFallback?: TokenizerPoolOptions['onFallback'];
}

export const createTokenEstimator = async (
  spec: string,
  options: TokenEstimatorOptions,
): Promise<TokenEstimator> => {
  const parsed = parseEstimatorSpec(spec);
  if (!parsed.ok) throw new Error(`token estimator "${spec}" ${parsed.problem}`);
  if (parsed.spec.kind === 'chars4') return createChars4Estimator();
  return createTiktokenEstimator(parsed.spec.model, parsed.spec.encoding, {
    workers: options.workers,
    queuePartsMax: options.queuePartsMax,
    ...(options.batchTimeoutMs === undefined ? {} : { batchTimeoutMs: options.batchTimeoutMs }),
    ...(options.onWorkerExit === undefined ? {} : { onWorkerExit: options.onWorkerExit }),
    ...(options.onFallback === undefined ? {} : { onFallback: options.onFallback }),
  });
};
