// Context ids arrive as one raw path segment, URL-encoded. Anything the contract does not allow
// (api/identifiers.ts) is 400 invalid_context_id before the service sees it, so ids that reach Raft
// are always well-formed.

import { ServiceError } from '../api/errors.js';
import { validateContextId } from '../api/identifiers.js';

/** Decodes and checks a raw path segment; throws ServiceError invalid_context_id. */
export const decodeContextId = (raw: string): string => {
  const id = raw.includes('%') ? percentDecode(raw) : raw;
  validateContextId(id);
  return id;
};

const percentDecode = (raw: string): string => {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalidId('has a malformed %-escape');
  }
};

const invalidId = (reason: string): ServiceError =>
  new ServiceError('invalid_context_id', `The context id ${reason}`);
