// What a stream request asks for (cursor, include_messages, SSE's Last-Event-ID) and the checks made
// before a connection is handed over, in the order of the REST routes: load (503), auth (401),
// context id (400), query (400), the connection cap (503); then, asynchronously, the context must
// exist (404) as a linearizable read says, which is also the barrier that makes this replica have
// applied at least everything committed before, so a cursor from another node is never ahead of it.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import type { ContextService } from '../api/service.js';
import { decodeContextId } from '../http/context-id.js';
import type { Gateway } from '../http/gateway.js';
import type { SubscribeRequest } from './hub.js';

const cursorOf = (name: string, text: string): number => {
  const value = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new ServiceError('invalid_query', `${name} must be a version: an integer >= 0`);
  }
  return value;
};

const booleanOf = (name: string, text: string): boolean => {
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new ServiceError('invalid_query', `${name} must be true or false`);
};

/** Parses ?cursor and ?include_messages; a Last-Event-ID (SSE resume) takes the cursor's place. */
export const parseStreamQuery = (
  rawQuery: string,
  lastEventId: string,
): { readonly cursor: number; readonly includeMessages: boolean } => {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(rawQuery);
  } catch {
    throw new ServiceError('invalid_query', 'The query string is malformed');
  }
  const cursorText = params.get('cursor');
  const includeText = params.get('include_messages');
  const cursor =
    lastEventId !== ''
      ? cursorOf('Last-Event-ID', lastEventId.trim())
      : cursorText === null || cursorText === ''
        ? 0
        : cursorOf('cursor', cursorText);
  const includeMessages =
    includeText === null || includeText === '' ? true : booleanOf('include_messages', includeText);
  return { cursor, includeMessages };
};

/** Places under the connection cap, taken before the asynchronous checks. */
export interface StreamAdmission {
  reserve(): boolean;
  release(): void;
}

/**
 * The synchronous checks (call in the uWS handler: `req` dies when it returns). Throws ServiceError;
 * on success a place under the cap is reserved, to be released unless the stream opens.
 */
export const admitStream = (
  gateway: Gateway,
  admission: StreamAdmission,
  req: HttpRequest,
  res: HttpResponse,
  lastEventId: string,
): SubscribeRequest => {
  gateway.admit();
  gateway.authorize(req, res);
  const contextId = decodeContextId(req.getParameter(0) ?? '');
  const { cursor, includeMessages } = parseStreamQuery(req.getQuery() ?? '', lastEventId);
  if (!admission.reserve()) {
    throw new ServiceError(
      'overloaded',
      'This node serves its maximum of live streams; retry shortly or use another node',
      {
        retryAfterSeconds: 1,
      },
    );
  }
  return { contextId, cursor, includeMessages };
};

/**
 * 404 unless the context exists, after a read barrier on its group (ServiceError otherwise).
 * Resolves in a pass of the event loop of its own, outside every uWS callback: the caller then
 * upgrades or writes the response, and uWS aborts the whole process ("Cork buffer must not be held
 * across event loop iterations") when that happens inside another socket's callback, which a promise
 * continuation can be if the read happens to resolve there (seen in a standalone uWS 20.30 program
 * upgrading from inside another request's handler).
 */
export const checkStreamable = async (service: ContextService, request: SubscribeRequest): Promise<void> => {
  await service.getContext(request.contextId);
  await new Promise<void>((resolve) => setImmediate(resolve));
};
