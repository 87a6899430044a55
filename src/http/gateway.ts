// What every route shares: authentication, limits, logging of internal errors and the count of
// requests in flight. Exposed to route registration hooks so later routes (websocket stream, SSE)
// authenticate, log and answer errors exactly like the REST routes.

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../errors.js';
import type { RequestLimits } from '../schemas.js';
import { createAuthenticator } from './auth.js';
import { Exchange } from './exchange.js';
import type { ExchangeHooks, RequestObserver } from './exchange.js';

/** The subset of pino the gateway uses; never given message contents or keys. */
export interface HttpLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface Gateway {
  readonly limits: RequestLimits;
  readonly logger: HttpLogger;
  /**
   * Throws ServiceError unauthorized unless the request carries a configured key; a no-op when no
   * keys are configured. Call synchronously in the uWS handler: `req` dies when it returns.
   */
  authorize(req: HttpRequest): void;
  /** Starts answering a request: attaches onAborted, so call it first, before any async work. */
  /** `method` (lower-case, as uWS reports it) matters only for HEAD, which gets no body. */
  begin(res: HttpResponse, route: string, method?: string): Exchange;
  /** Resolves when no request is in flight, or after timeoutMs. */
  whenIdle(timeoutMs: number): Promise<void>;
}

export interface GatewayOptions {
  readonly apiKeys: readonly string[];
  readonly limits: RequestLimits;
  readonly logger: HttpLogger;
  readonly onRequest: RequestObserver | undefined;
}

export const createGateway = (options: GatewayOptions): Gateway => {
  const authenticate = createAuthenticator(options.apiKeys);
  let inflight = 0;
  let idleWaiters: (() => void)[] = [];
  const hooks: ExchangeHooks = {
    onRequest: options.onRequest,
    onInternalError: (requestId, error, route) =>
      options.logger.error({
        type: 'http_internal_error',
        request_id: requestId,
        route,
        err: errorSummary(error),
      }),
    onOpen: () => {
      inflight += 1;
    },
    onSettle: () => {
      inflight -= 1;
      if (inflight > 0 || idleWaiters.length === 0) return;
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const wake of waiters) wake();
    },
  };
  return {
    limits: options.limits,
    logger: options.logger,
    authorize: (req) => {
      if (authenticate !== undefined && !authenticate(req.getHeader('authorization'))) {
        throw new ServiceError('unauthorized', 'A valid API key is required (Authorization: Bearer <key>)');
      }
    },
    begin: (res, route, method) => new Exchange(res, route, hooks, method === 'head'),
    whenIdle: (timeoutMs) =>
      inflight === 0
        ? Promise.resolve()
        : new Promise((resolve) => {
            const timer = setTimeout(resolve, timeoutMs);
            idleWaiters.push(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
  };
};

/** Name, message and stack only: enough to debug, and never a request body. */
const errorSummary = (error: unknown): object =>
  error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: typeof error, message: 'non-Error value thrown' };
