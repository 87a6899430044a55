// Starts the HTTP gateway on uWebSockets.js: validates the limits, compiles the schemas and the
// OpenAPI document once, registers the route table, lets later features (websocket stream, SSE)
// add their routes through `extend`, and answers everything else with 404.

import uWS from 'uWebSockets.js';
import type { TemplatedApp, us_listen_socket } from 'uWebSockets.js';

import type { RequestLimits } from '../api/schemas.js';
import { defaultRequestLimits } from '../api/schemas.js';
import type { ContextService, Readiness } from '../api/service.js';
import type { RequestObserver } from './exchange.js';
import type { Gateway, HttpLogger, LoadLimits } from './gateway.js';
import { createGateway, defaultLoadLimits } from './gateway.js';
import type { MetricsSnapshot } from './handlers.js';
import { createHandlers } from './handlers.js';
import { buildOpenApiDocument } from './openapi.js';
import { registerNotFound, registerRoutes } from './router.js';
import { createValidators } from './validation.js';

export interface HttpServerOptions {
  /** Serve HTTPS with these PEM files (checked at start-up by node/tls-files.ts); plain HTTP when absent. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Default '0.0.0.0'. */
  readonly host?: string;
  /** 0 picks an ephemeral port; read it back from HttpServer.port. */
  readonly port: number;
  readonly service: ContextService;
  readonly readiness: () => Readiness;
  readonly metrics: () => Promise<MetricsSnapshot>;
  /** Accepted Bearer keys (several during rotation); empty turns authentication off. */
  readonly apiKeys: readonly string[];
  /** Without keys, serve /v1 to clients on this machine only (default true). */
  readonly protectedMode?: boolean;
  /** Requests per second per API key (429 past it); 0 or absent: no limit. */
  readonly ratePerKey?: number;
  readonly rateBurst?: number;
  /** Missing fields take defaultRequestLimits. */
  readonly limits?: Partial<RequestLimits>;
  /** Why this node refuses writes now (e.g. its disk is nearly full), or undefined. */
  readonly refuseWrites?: () => string | undefined;
  /** True while file descriptors are nearly spent: answers close their connections (fd-pressure.ts). */
  readonly fdPressed?: () => boolean;
  /** The node's load limits; missing fields take defaultLoadLimits. */
  readonly load?: Partial<LoadLimits>;
  readonly logger: HttpLogger;
  /** Called once per answered (or aborted, status 499) request, e.g. for HTTP metrics. */
  readonly onRequest?: RequestObserver;
  /** Registers more routes (websocket stream, SSE) before the 404 catch-all. */
  readonly extend?: (app: TemplatedApp, gateway: Gateway) => void;
  /** How long close() waits for requests in flight before dropping connections. Default 5000. */
  readonly closeTimeoutMs?: number;
}

export interface HttpServer {
  readonly port: number;
  /**
   * The first step of a graceful shutdown: new /v1 requests get 503 shutting_down with Retry-After
   * (health, metrics and the internal endpoints still answer); requests in flight go on.
   */
  drain(): void;
  /** Stops accepting, waits for requests in flight (bounded), then closes every connection. */
  close(): Promise<void>;
}

/** uWS 20.30 has app.close() (closes all sockets) but its typings lack it. */
type ClosableApp = TemplatedApp & { close?: () => void };

export const startHttpServer = async (options: HttpServerOptions): Promise<HttpServer> => {
  const limits = resolveLimits({ ...defaultRequestLimits, ...options.limits });
  const load = resolveLimits({ ...defaultLoadLimits, ...options.load });
  const gateway = createGateway({
    apiKeys: options.apiKeys,
    protectedMode: options.protectedMode ?? true,
    ...(options.ratePerKey === undefined ? {} : { ratePerKey: options.ratePerKey }),
    ...(options.rateBurst === undefined ? {} : { rateBurst: options.rateBurst }),
    limits,
    load,
    refuseWrites: options.refuseWrites,
    fdPressed: options.fdPressed,
    logger: options.logger,
    onRequest: options.onRequest,
  });
  const app: ClosableApp =
    options.tls === undefined
      ? uWS.App()
      : uWS.SSLApp({ cert_file_name: options.tls.certFile, key_file_name: options.tls.keyFile });
  const handlers = createHandlers({
    service: options.service,
    validators: createValidators(limits),
    readiness: options.readiness,
    metrics: options.metrics,
    openApiJson: JSON.stringify(buildOpenApiDocument(limits)),
  });
  registerRoutes(app, handlers, gateway);
  options.extend?.(app, gateway);
  registerNotFound(app, gateway);
  const host = options.host ?? '0.0.0.0';
  const listenSocket = await listen(app, host, options.port);
  const port = uWS.us_socket_local_port(listenSocket);
  if (options.apiKeys.length === 0) {
    const protectedMode = options.protectedMode ?? true;
    options.logger.warn(
      { type: 'http_auth_disabled', protectedMode },
      protectedMode
        ? 'No API key configured: /v1 serves clients on this machine only (protected mode)'
        : 'No API key configured and protected mode off: /v1 routes are open to the network',
    );
  }
  options.logger.info({ type: 'http_listening', host, port }, 'HTTP gateway listening');
  return {
    port,
    drain: () => gateway.drain(),
    close: closer(app, listenSocket, gateway, options.closeTimeoutMs ?? 5_000),
  };
};

/** uWS's LIBUS_LISTEN_EXCLUSIVE_PORT (its ListenOptions enum exists in the typings only). */
const exclusivePort = 1;

/** uWS's listen with a host and options: the native call takes it; its typings lack the overload. */
type ListenOnHost = (
  host: string,
  port: number,
  options: number,
  callback: (listenSocket: us_listen_socket | false) => void,
) => TemplatedApp;

// Exclusive: by default uWS sets SO_REUSEPORT, so a second node started on a taken port would listen
// without an error and take half of the first one's connections (the kernel splits them).
const listen = (app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> =>
  new Promise((resolve, reject) => {
    const listenOnHost = app.listen.bind(app) as unknown as ListenOnHost;
    listenOnHost(host, port, exclusivePort, (listenSocket) => {
      if (listenSocket === false)
        reject(new Error(`HTTP gateway could not listen on ${host}:${port} (is the port taken?)`));
      else resolve(listenSocket);
    });
  });

const closer = (app: ClosableApp, listenSocket: us_listen_socket, gateway: Gateway, timeoutMs: number) => {
  let closing: Promise<void> | undefined;
  return (): Promise<void> => {
    closing ??= (async () => {
      uWS.us_listen_socket_close(listenSocket);
      await gateway.whenIdle(timeoutMs);
      // Idle keep-alive connections would otherwise keep the event loop (and the process) alive.
      app.close?.();
    })();
    return closing;
  };
};

const resolveLimits = <Limits extends object>(limits: Limits): Limits => {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`HTTP limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  return limits;
};
