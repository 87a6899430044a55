// The fingerprint of an appended message's content, kept with its idempotency key so that a retry
// can be told apart from a different message reusing the key. It covers what the client sent as the
// message (role, parts, metadata, id) and not the token counts: those may come from the server's
// estimator, which can change between releases, and a retry across an upgrade is still a retry.
//
// Computed during apply, so it must be deterministic on every replica: canonical JSON (object keys
// sorted) hashed with SHA-256. Absent metadata counts as `{}`, as it is stored. A client that resends the same JSON with its keys in another order is
// retrying, not sending something new.

import { createHash } from 'node:crypto';

import type { JsonValue } from '../api/domain.js';
import type { MessageDraft } from './commands.js';

/** JSON text with object keys sorted at every level (undefined members left out, as JSON does). */
export const canonicalJson = (value: JsonValue): string => {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const members = Object.keys(value)
    .sort()
    .flatMap((key) => {
      const member = value[key];
      return member === undefined ? [] : [`${JSON.stringify(key)}:${canonicalJson(member)}`];
    });
  return `{${members.join(',')}}`;
};

/** 128 bits of SHA-256 over the message's canonical content, as hex. */
export const messageFingerprint = (message: MessageDraft): string => {
  const content: JsonValue = [
    message.role,
    message.parts as unknown as JsonValue,
    message.metadata ?? {},
    message.clientId ?? null,
  ];
  return createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 32);
};
