// Context ids arrive as one raw path segment. The contract allows 1–256 bytes of UTF-8 without
// control characters or "/", URL-encoded; anything else is 400 invalid_context_id before the
// service sees it, so ids that reach Raft are always well-formed.

import { ServiceError } from '../api/errors.js';

const idBytesMax = 256;

/** Decodes and checks a raw path segment; throws ServiceError invalid_context_id. */
export const decodeContextId = (raw: string): string => {
  const id = raw.includes('%') ? percentDecode(raw) : raw;
  // Every UTF-16 unit encodes to at least one UTF-8 byte, so a long string is rejected unmeasured.
  if (id.length === 0 || id.length > idBytesMax) throw invalidId('must be 1 to 256 bytes');
  const nonAscii = scanForbidden(id);
  if (nonAscii && Buffer.byteLength(id, 'utf8') > idBytesMax) throw invalidId('must be 1 to 256 bytes');
  return id;
};

const percentDecode = (raw: string): string => {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalidId('has a malformed %-escape');
  }
};

/** Throws on control characters (C0, DEL, C1) and "/"; returns whether any non-ASCII unit was seen. */
const scanForbidden = (id: string): boolean => {
  let nonAscii = false;
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) throw invalidId('must not contain control characters');
    if (code === 0x2f) throw invalidId('must not contain "/"');
    if (code > 0x7f) nonAscii = true;
  }
  return nonAscii;
};

const invalidId = (reason: string): ServiceError =>
  new ServiceError('invalid_context_id', `The context id ${reason}`);
