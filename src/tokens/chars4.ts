// The "chars4" estimator: max(1, ceil(chars / 4)) per part, the rule of thumb of ~4 characters per
// token. "chars" are Unicode code points, not UTF-16 units: an emoji or a CJK character outside the
// BMP is one character to a reader and to a tokenizer's byte-level BPE alike, and counting it twice
// would make the estimate depend on JavaScript's string encoding. Counted inline: it costs
// nanoseconds, far less than a message to a worker.
import type { MessagePart } from '../api/domain.js';
import { partText } from './part-text.js';
import type { TokenEstimator } from './types.js';

/** Code points in `text`; an unpaired surrogate counts as one. */
export const countCodePoints = (text: string): number => {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
};

export const chars4Count = (text: string): number => Math.max(1, Math.ceil(countCodePoints(text) / 4));

export const createChars4Estimator = (): TokenEstimator => ({
  name: 'chars4',
  countParts: async (parts: readonly MessagePart[]) => parts.map((part) => chars4Count(partText(part))),
  close: async () => {},
});
