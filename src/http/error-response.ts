// The one place where failures become HTTP answers: a ServiceError keeps its code, status and
// sentence; anything else is a 500 "internal" whose only client-visible detail is a request id
// that also appears in the log line, so operators can find the cause and clients learn nothing
// about the internals.

import { randomUUID } from 'node:crypto';

import { isServiceError } from '../api/errors.js';
import type { ServiceError } from '../api/errors.js';
import type { Header, Reply } from './reply.js';

/** Receives every internal error with the id handed to the client. */
export type InternalErrorSink = (requestId: string, error: unknown) => void;

const defaultRetryAfterSeconds = 1;

export const errorReply = (
  error: unknown,
  onInternal: InternalErrorSink,
  extra?: readonly Header[],
): Reply => {
  if (isServiceError(error) && error.code !== 'internal') return serviceErrorReply(error, extra);
  const requestId = randomUUID();
  onInternal(requestId, error);
  return {
    status: 500,
    body: JSON.stringify({ error: 'internal', message: `Internal error (request id ${requestId})` }),
    headers: [['X-Request-Id', requestId]],
  };
};

const serviceErrorReply = (error: ServiceError, extra?: readonly Header[]): Reply => {
  const headers: Header[] = extra === undefined ? [] : [...extra];
  if (error.httpStatus === 429 || error.httpStatus === 503) {
    const seconds = Math.max(0, Math.ceil(error.retryAfterSeconds ?? defaultRetryAfterSeconds));
    headers.push(['Retry-After', String(seconds)]);
  }
  if (error.httpStatus === 401) headers.push(['WWW-Authenticate', 'Bearer']);
  return {
    status: error.httpStatus,
    body: JSON.stringify({ error: error.code, message: error.message }),
    headers,
  };
};
