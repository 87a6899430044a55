// Registers the route table on a uWS app. uWS does the matching (a tree, no regexes); this file
// does what every route needs in the order the contract implies: auth (401), context id (400),
// content type (415), declared size (413), then the body as it streams in (413, invalid_json),
// then the handler (a write's on the next check phase, see `start`). /v1 requests past the node's
// in-flight limit are shed first (503). Everything the handler needs from `req` is read here,
// synchronously, because uWS stack-allocates `req` and frees it when the callback returns.

import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import { declaredLength, readBody } from './body-reader.js';
import { decodeContextId } from './context-id.js';
import type { Exchange } from './exchange.js';
import type { Gateway } from './gateway.js';
import type { RouteHandler, RouteInput } from './handlers.js';
import type { HttpMethod, OperationId, RouteSpec } from './routes.js';
import { routes } from './routes.js';
import { parseJsonBody } from './validation.js';

type UwsHandler = (res: HttpResponse, req: HttpRequest) => void;

const register = (app: TemplatedApp, method: HttpMethod, path: string, handler: UwsHandler): void => {
  switch (method) {
    case 'get':
      app.get(path, handler);
      return;
    case 'put':
      app.put(path, handler);
      return;
    case 'post':
      app.post(path, handler);
      return;
    case 'patch':
      app.patch(path, handler);
      return;
    case 'delete':
      app.del(path, handler);
      return;
  }
};

/** Registers every route of the table, and 405 for other methods on their paths. */
export const registerRoutes = (
  app: TemplatedApp,
  handlers: Readonly<Record<OperationId, RouteHandler>>,
  gateway: Gateway,
): void => {
  const methodsByPath = new Map<string, string[]>();
  for (const route of routes) {
    register(app, route.method, route.path, dispatcher(route, handlers[route.operationId], gateway));
    const methods = methodsByPath.get(route.path) ?? [];
    methods.push(route.method.toUpperCase());
    methodsByPath.set(route.path, methods);
  }
  for (const [path, methods] of methodsByPath)
    app.any(path, methodNotAllowed(path, methods.join(', '), gateway));
};

/** The last registration: anything no route matched. */
export const registerNotFound = (app: TemplatedApp, gateway: Gateway): void => {
  app.any('/*', (res, req) => {
    gateway.begin(res, 'unmatched', req.getMethod()).fail(new ServiceError('not_found', 'No such route'));
  });
};

const methodNotAllowed =
  (path: string, allow: string, gateway: Gateway): UwsHandler =>
  (res, req) => {
    const error = new ServiceError(
      'method_not_allowed',
      `${req.getCaseSensitiveMethod()} is not allowed here`,
    );
    gateway.begin(res, `OTHER ${path}`, req.getMethod()).fail(error, [['Allow', allow]]);
  };

const dispatcher = (route: RouteSpec, handler: RouteHandler, gateway: Gateway): UwsHandler => {
  const label = `${route.method.toUpperCase()} ${route.path}`;
  const hasId = route.path.includes(':id');
  // Health, metrics and the OpenAPI document stay answerable when the node sheds /v1 load.
  const shed = route.path.startsWith('/v1/');
  const writes = shed && route.method !== 'get';
  return (res, req) => {
    const exchange = gateway.begin(res, label);
    try {
      if (shed) gateway.admit();
      if (route.auth) gateway.authorize(req, res);
      if (writes) gateway.admitWrite();
      const contextId = hasId ? decodeContextId(req.getParameter(0)) : '';
      const rawQuery = route.query === undefined ? '' : (req.getQuery() ?? '');
      const idempotencyKey = route.idempotencyKey === true ? req.getHeader('idempotency-key') : '';
      if (route.body === undefined) {
        start(exchange, handler, { contextId, rawQuery, body: undefined, idempotencyKey }, writes);
        return;
      }
      checkJsonContentType(req.getHeader('content-type'));
      readBody(res, exchange, gateway.bodies, declaredLength(req.getHeader('content-length')), (text) => {
        let body: unknown;
        try {
          body = parseJsonBody(text);
        } catch (error) {
          exchange.fail(error);
          return;
        }
        start(exchange, handler, { contextId, rawQuery, body, idempotencyKey }, writes);
      });
    } catch (error) {
      // A body refused before reading is skipped by uWS (it knows the declared length or the chunks'
      // framing), so the connection stays usable.
      exchange.fail(error);
    }
  };
};

/**
 * Runs the handler: at once for a read, on the next check phase for a write, and then only if its
 * connection is still open.
 *
 * uWS refuses HTTP pipelining: when it parses a second request on a connection whose first answer is
 * still pending, it closes the socket. A pipelined write run at once would be applied with its answer
 * lost, and a client retrying it without an idempotency key would apply it twice. uWS parses a whole
 * received chunk (this request's head and body, then the next request's head, which closes the
 * connection and aborts this exchange) before the event loop reaches its check phase, so a deferred
 * write sees the abort and is skipped: the client sees its connection closed and can retry safely.
 * The cost is one setImmediate per write; reads have no side effects and are not deferred.
 */
const start = (exchange: Exchange, handler: RouteHandler, input: RouteInput, write: boolean): void => {
  if (!write) {
    exchange.run(handler, input);
    return;
  }
  setImmediate(() => {
    if (exchange.isOpen) exchange.run(handler, input);
  });
};

/** application/json with any parameters (charset); media types are case-insensitive. */
const checkJsonContentType = (contentType: string): void => {
  const semicolon = contentType.indexOf(';');
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new ServiceError('unsupported_media_type', 'Request bodies must be application/json');
  }
};
