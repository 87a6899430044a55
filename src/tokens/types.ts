// How the service asks for token counts. Counting happens once, on the node that accepts a request,
// off the Raft apply path; the counts travel inside the replicated command.

import type { MessagePart } from '../api/domain.js';

export interface TokenEstimator {
  /** e.g. "tiktoken:gpt-4o" or "chars4". */
  readonly name: string;
  /**
   * One count per part, in order. A part of type "text" with a string `text` is counted on that text;
   * any other part on its compact JSON (JSON.stringify). A message's estimate is the sum of its parts.
   */
  countParts(parts: readonly MessagePart[]): Promise<number[]>;
  close(): Promise<void>;
}
