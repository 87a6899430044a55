// The identifiers of the wire contract (../shared/API.md), each with its one limit and one check:
// context ids ("1–256 bytes of UTF-8, no control characters and no /") and idempotency keys (the
// Idempotency-Key header, or message.id in its place). Limits are in UTF-8 bytes, the unit the store
// keys them in. The gateway checks them while decoding a request, the service before it proposes,
// and a replica's command decoder (context/commands.ts) before it applies: all with these functions.

import { ServiceError } from './errors.js';

export const contextIdBytesMax = 256;
export const idempotencyKeyBytesMax = 256;

// \p{Cc} covers C0, DEL and C1; \p{Cs} under the u flag matches only lone surrogates, which UTF-8
// cannot encode (they would be stored as U+FFFD and no longer match the id the client sent).
const forbiddenCharacters = /[\p{Cc}\p{Cs}/]/u;

/** Throws ServiceError invalid_context_id unless `id` is 1–256 bytes of UTF-8 without control chars or "/". */
export const validateContextId = (id: string): void => {
  if (typeof id !== 'string' || id.length === 0) throw invalidContextId('must not be empty');
  // Every UTF-16 unit encodes to at least one UTF-8 byte, so a long string is refused unmeasured.
  const bytes = id.length > contextIdBytesMax ? id.length : Buffer.byteLength(id, 'utf8');
  if (bytes > contextIdBytesMax)
    throw invalidContextId(`is ${bytes} bytes or more; the limit is ${contextIdBytesMax}`);
  if (forbiddenCharacters.test(id)) {
    throw invalidContextId('must not contain control characters, unpaired surrogates or "/"');
  }
};

const invalidContextId = (reason: string): ServiceError =>
  new ServiceError('invalid_context_id', `The context id ${reason}`);

/** Throws ServiceError invalid_message unless `key` is 1–256 bytes of UTF-8. */
export const validateIdempotencyKey = (key: string): void => {
  const bytes = key.length > idempotencyKeyBytesMax ? key.length : Buffer.byteLength(key, 'utf8');
  if (key === '' || bytes > idempotencyKeyBytesMax) {
    throw new ServiceError(
      'invalid_message',
      `Idempotency key must be 1 to ${idempotencyKeyBytesMax} bytes of UTF-8`,
    );
  }
};
