// What a part's tokens are counted on (src/tokens/types.ts): a "text" part with a string `text` is
// counted on that text; any other part on its compact JSON, so tool calls and file parts still cost
// what they would cost a model that sees them serialised.
import type { MessagePart } from '../api/domain.js';

export const partText = (part: MessagePart): string =>
  part.type === 'text' && typeof part['text'] === 'string' ? part['text'] : JSON.stringify(part);
