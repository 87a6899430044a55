// Splitting a client's message-level `token_count` over the message's parts. skip_parts needs a
// count per part (a filtered message counts only its kept parts), but a client that sends
// `token_count` counts the message as a whole. We split it in proportion to each part's compact
// JSON length, rounding by largest remainder (ties to the earlier part), so the shares are
// deterministic integers that sum exactly to the client's count.

import type { MessagePart } from '../api/domain.js';

export const splitTokenCount = (parts: readonly MessagePart[], tokenCount: number): number[] => {
  if (parts.length === 0) return [];
  const weights = parts.map((part) => BigInt(JSON.stringify(part).length));
  const totalWeight = weights.reduce((sum, weight) => sum + weight, 0n);
  const total = BigInt(tokenCount);
  // BigInt: tokenCount × weight can exceed 2^53.
  const shares = weights.map((weight) => (total * weight) / totalWeight);
  const remainders = weights.map((weight, index) => ({ index, remainder: (total * weight) % totalWeight }));
  let left = Number(total - shares.reduce((sum, share) => sum + share, 0n));
  remainders.sort((a, b) =>
    a.remainder === b.remainder ? a.index - b.index : a.remainder > b.remainder ? -1 : 1,
  );
  const result = shares.map(Number);
  for (const { index } of remainders) {
    if (left-- <= 0) break;
    result[index] = (result[index] ?? 0) + 1;
  }
  return result;
};
