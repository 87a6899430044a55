// The node's live streams, assembled: one hub, the websocket route and its SSE mirror, the metrics.
// node.ts feeds the hub the state machine's applied events and snapshot restores, registers the
// routes on the HTTP app and closes the streams (1001) before anything else when the node stops.

import type { TemplatedApp } from 'uWebSockets.js';

import type { ContextService } from '../api/service.js';
import type { Gateway } from '../http/gateway.js';
import type { Metrics } from '../telemetry/metrics.js';
import { pendingBytesFor, StreamHub } from './hub.js';
import type { RemoteStreams, StreamLogger, StreamMetrics } from './hub.js';
import { createPullTarget } from './stream-pull.js';
import type { StreamPullTarget } from './stream-pull.js';
import { registerSseRoute } from './sse-route.js';
import type { StreamStore } from './stream-store.js';
import { registerWebsocketRoute } from './ws-route.js';

export interface StreamsOptions {
  readonly store: StreamStore;
  /** Answers the pre-upgrade checks (a context must exist: 404 otherwise). */
  readonly service: ContextService;
  readonly connectionsMax: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly bufferBytesMax: number;
  readonly clientFrameBytesMax?: number;
  readonly metrics?: Metrics;
  readonly logger: StreamLogger;
  /**
   * In a cluster: this node's own service (pulls of peers are answered from its replicas), and the
   * cluster's remote streams, given the function that answers peers' pulls.
   */
  readonly cluster?: {
    readonly localService: ContextService;
    readonly remoteStreams: (target: StreamPullTarget) => RemoteStreams;
  };
}

export interface Streams {
  readonly hub: StreamHub;
  /** Registers GET /stream (websocket) and GET /events (SSE). */
  register(app: TemplatedApp, gateway: Gateway): void;
  /** Closes every stream with 1001 and refuses new ones. */
  close(): void;
}

export const createStreams = (options: StreamsOptions): Streams => {
  // Peers' pulls wait on this node's hub for the next event; the hub needs the remote streams.
  const late: { hub?: StreamHub } = {};
  const remote = options.cluster?.remoteStreams(
    createPullTarget(
      {
        store: options.store,
        nextEvent: (contextId, timeoutMs) => late.hub?.nextEvent(contextId, timeoutMs) ?? Promise.resolve(),
      },
      options.cluster.localService,
    ),
  );
  const hub = new StreamHub({
    ...(remote === undefined ? {} : { remote }),
    store: options.store,
    connectionsMax: options.connectionsMax,
    pingIntervalMs: options.pingIntervalMs,
    idleTimeoutMs: options.idleTimeoutMs,
    limits: {
      bufferBytesMax: options.bufferBytesMax,
      pendingBytesMax: pendingBytesFor(options.bufferBytesMax),
    },
    ...(options.metrics === undefined ? {} : { metrics: streamMetrics(options.metrics) }),
    logger: options.logger,
  });
  late.hub = hub;
  options.metrics?.bindGauges({ streamConnections: () => hub.connections });
  return {
    hub,
    register: (app, gateway) => {
      registerWebsocketRoute(app, gateway, {
        hub,
        service: options.service,
        closeGraceMs: options.idleTimeoutMs,
        ...(options.clientFrameBytesMax === undefined
          ? {}
          : { clientFrameBytesMax: options.clientFrameBytesMax }),
      });
      registerSseRoute(app, gateway, { hub, service: options.service });
    },
    close: () => hub.close(),
  };
};

const streamMetrics = (metrics: Metrics): StreamMetrics => ({
  framesSent: (count) => metrics.stream.framesSentTotal.inc(count),
  slowConsumerClosed: () => metrics.stream.slowConsumersClosedTotal.inc(),
  replayed: (seconds) => metrics.stream.replayDurationSeconds.observe(seconds),
});
