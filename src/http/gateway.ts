// What every route shares: authentication, limits, logging of internal errors and the count of
// requests in flight. Exposed to route registration hooks so later routes (websocket stream, SSE)
// authenticate, log and answer errors exactly like the REST routes.
//
// The node's own load limits live here too, because they are about all requests at once: requests
// in flight past `inflightRequestsMax` are shed with 503 overloaded and Retry-After (a client that
// retries comes back when there is room, and the node never queues without bound); request-body
// bytes held in memory stay under `bufferedBytesMax`; and a body must arrive whole within
// `bodyTimeoutMs`, or it is answered 408 and its connection closed (a body trickled one byte at a
// time would otherwise hold its connection and its buffer forever).

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import type { RequestLimits } from '../api/schemas.js';
import { allowedWithoutKey, createAuthenticator } from './auth.js';
import { createRateLimiter } from './rate-limit.js';
import type { BodyRules } from './body-reader.js';
import { Exchange } from './exchange.js';
import type { ExchangeHooks, RequestObserver } from './exchange.js';

/** The subset of pino the gateway uses; never given message contents or keys. */
export interface HttpLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface LoadLimits {
  /** Requests in flight on this node; past it /v1 requests get 503 overloaded. */
  readonly inflightRequestsMax: number;
  /** Request-body bytes held in memory by requests in flight; past it, 503 overloaded. */
  readonly bufferedBytesMax: number;
  /** Time from a request's start until its body's last byte; past it, 408 and the connection closes. */
  readonly bodyTimeoutMs: number;
}

export const defaultLoadLimits: LoadLimits = {
  inflightRequestsMax: 10_000,
  bufferedBytesMax: 256 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
};

export interface Gateway {
  readonly limits: RequestLimits;
  /** How bodies are read: their limit, how much of a refused one is still drained, their deadline. */
  readonly bodies: BodyRules;
  readonly logger: HttpLogger;
  /**
   * Throws ServiceError unauthorized unless the request carries a configured key; a no-op when no
   * keys are configured. Call synchronously in the uWS handler: `req` dies when it returns.
   */
  authorize(req: HttpRequest, res: HttpResponse): void;
  /**
   * Throws ServiceError shutting_down once the node drains, else overloaded when more requests are
   * in flight than the node takes.
   */
  admit(): void;
  /** From now on, refuse new /v1 requests (503 shutting_down, Retry-After); those in flight go on. */
  drain(): void;
  /** Throws ServiceError insufficient_storage while the node refuses writes. */
  admitWrite(): void;
  /** Starts answering a request: attaches onAborted, so call it first, before any async work. */
  /** `method` (lower-case, as uWS reports it) matters only for HEAD, which gets no body. */
  begin(res: HttpResponse, route: string, method?: string): Exchange;
  /** Resolves when no request is in flight, or after timeoutMs. */
  whenIdle(timeoutMs: number): Promise<void>;
}

export interface GatewayOptions {
  readonly apiKeys: readonly string[];
  /** Without API keys, serve /v1 to loopback clients only (auth.ts). */
  readonly protectedMode?: boolean;
  /** Requests per second per API key (429 past it); 0 or absent: no limit. */
  readonly ratePerKey?: number;
  /** Requests a key may make at once after a quiet spell (default: one second's worth). */
  readonly rateBurst?: number;
  readonly limits: RequestLimits;
  readonly load: LoadLimits;
  readonly logger: HttpLogger;
  readonly onRequest: RequestObserver | undefined;
  readonly refuseWrites?: (() => string | undefined) | undefined;
  /** True while the node's file descriptors are nearly spent (fd-pressure.ts). */
  readonly fdPressed?: (() => boolean) | undefined;
}

/** A refused body's rest still read before closing: twice the body limit, at least 4 MiB. */
const lingerBytesFor = (bodyBytesMax: number): number => Math.max(4 * 1024 * 1024, 2 * bodyBytesMax);

export const createGateway = (options: GatewayOptions): Gateway => {
  const authenticate = createAuthenticator(options.apiKeys);
  const rates = createRateLimiter(
    options.apiKeys.length,
    options.ratePerKey ?? 0,
    options.rateBurst ?? Math.max(1, options.ratePerKey ?? 0),
  );
  const fdPressed = options.fdPressed ?? (() => false);
  let inflight = 0;
  let draining = false;
  let bufferedBytes = 0;
  let idleWaiters: (() => void)[] = [];
  const deadlines = new BodyDeadlines(options.load.bodyTimeoutMs);
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
    onHold: (bytes) => {
      // Past the budget only when something else holds part of it: one answer larger than the
      // whole budget (a read page can be) must still be servable, alone.
      if (bufferedBytes > 0 && bufferedBytes + bytes > options.load.bufferedBytesMax) return false;
      bufferedBytes += bytes;
      return true;
    },
    onRelease: (bytes) => {
      bufferedBytes -= bytes;
    },
    closeConnections: () => fdPressed(),
  };
  return {
    limits: options.limits,
    bodies: {
      bytesMax: options.limits.bodyBytesMax,
      lingerBytesMax: lingerBytesFor(options.limits.bodyBytesMax),
      watch: (exchange) => deadlines.watch(exchange),
    },
    logger: options.logger,
    admit: () => {
      if (draining) {
        // A client that retries elsewhere (or here, once a restarted node answers) loses nothing.
        throw new ServiceError('shutting_down', 'This node is shutting down; retry on another node', {
          retryAfterSeconds: 1,
        });
      }
      if (fdPressed()) {
        throw new ServiceError(
          'overloaded',
          'The node is out of connections; retry shortly or on another node',
          {
            retryAfterSeconds: 1,
          },
        );
      }
      // begin() has counted this request already.
      if (inflight > options.load.inflightRequestsMax) {
        throw new ServiceError('overloaded', 'The node has too many requests in flight; retry shortly', {
          retryAfterSeconds: 1,
        });
      }
    },
    authorize: (req, res) => {
      if (authenticate !== undefined) {
        const key = authenticate(req.getHeader('authorization'));
        if (key < 0) {
          throw new ServiceError('unauthorized', 'A valid API key is required (Authorization: Bearer <key>)');
        }
        const waitSeconds = rates?.take(key);
        if (waitSeconds !== undefined) {
          throw new ServiceError('rate_limited', 'This API key is over its request rate; retry later', {
            retryAfterSeconds: waitSeconds,
          });
        }
        return;
      }
      if (!allowedWithoutKey(new Uint8Array(res.getRemoteAddress()), options.protectedMode ?? true)) {
        throw new ServiceError(
          'unauthorized',
          'This node has no API key and serves /v1 to clients on its own machine only (protected mode): ' +
            'set FASTPACA_API_KEY, or FASTPACA_PROTECTED_MODE=false to serve an open API',
        );
      }
    },
    drain: () => {
      draining = true;
    },
    admitWrite: () => {
      const refusal = options.refuseWrites?.();
      if (refusal !== undefined) throw new ServiceError('insufficient_storage', refusal);
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

/**
 * Bodies still arriving, each with its deadline. One coarse sweep (a quarter of the timeout, at most
 * a second) instead of a timer per request: most bodies arrive in one chunk and leave at once.
 */
class BodyDeadlines {
  private readonly reading = new Map<Exchange, number>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly timeoutMs: number) {}

  watch(exchange: Exchange): () => void {
    this.reading.set(exchange, Date.now() + this.timeoutMs);
    if (this.sweeper === undefined) {
      this.sweeper = setInterval(() => this.sweep(), Math.min(1000, Math.ceil(this.timeoutMs / 4)));
      this.sweeper.unref();
    }
    return () => this.reading.delete(exchange);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [exchange, deadline] of this.reading) {
      if (!exchange.isOpen) this.reading.delete(exchange);
      else if (deadline <= now) {
        this.reading.delete(exchange);
        const late = new ServiceError(
          'request_timeout',
          `The request body did not arrive within ${this.timeoutMs} ms`,
        );
        exchange.fail(late, undefined, true);
      }
    }
    if (this.reading.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}

/** Name, message and stack only: enough to debug, and never a request body. */
const errorSummary = (error: unknown): object =>
  error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { name: typeof error, message: 'non-Error value thrown' };
