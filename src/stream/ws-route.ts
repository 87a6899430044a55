// GET /v1/contexts/:id/stream on uWS: the upgrade is checked like a REST request (stream-request.ts)
// and refused with the documented error shape, then the socket becomes a FrameSink of a
// Subscription. Client frames count as heartbeats (`{"type":"pong"}` or anything else); one over
// `clientFrameBytesMax` closes the stream (1009). uWS's own idle timeout and automatic pings
// are off: the hub keeps the stream's heartbeat, in JSON frames clients can see.

import uWS from 'uWebSockets.js';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import type { ContextService } from '../api/service.js';
import type { Gateway } from '../http/gateway.js';
import { CloseCode } from './close-codes.js';
import type { StreamHub, SubscribeRequest } from './hub.js';
import { admitStream, checkStreamable } from './stream-request.js';
import type { FrameSink, Subscription } from './subscription.js';

export const streamPath = '/v1/contexts/:id/stream';
const routeLabel = `GET ${streamPath}`;

/** Largest client frame: pongs are tiny; anything bigger is a client we do not want. */
export const clientFrameBytesMaxDefault = 4096;

interface SocketData {
  readonly request: SubscribeRequest;
  subscription?: Subscription;
  /** Frames may be sent (false once we ended it or it closed). */
  open: boolean;
  /** The socket exists (false once uWS reported its close). */
  alive: boolean;
}

export interface WebsocketRouteOptions {
  readonly hub: StreamHub;
  readonly service: ContextService;
  readonly clientFrameBytesMax?: number;
  /**
   * A client that does not read does not read our close frame either: this long after it, the
   * socket is dropped (the stream's idle timeout).
   */
  readonly closeGraceMs: number;
}

export const registerWebsocketRoute = (
  app: TemplatedApp,
  gateway: Gateway,
  options: WebsocketRouteOptions,
): void => {
  const { hub, service } = options;
  const frameBytesMax = options.clientFrameBytesMax ?? clientFrameBytesMaxDefault;
  app.ws<SocketData>(streamPath, {
    compression: uWS.DISABLED,
    // A backstop: uWS drops (1006) a frame over this before we see it; up to it, message() closes
    // an oversized frame with 1009 and a reason the client can read.
    maxPayloadLength: 4 * frameBytesMax,
    // The subscription bounds what a client may leave unread (and closes it past that, between
    // versions); uWS must never drop a frame on its own, so its limit is out of the way.
    maxBackpressure: 1024 * 1024 * 1024,
    closeOnBackpressureLimit: 0,
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      const exchange = gateway.begin(res, routeLabel);
      let request: SubscribeRequest;
      try {
        request = admitStream(gateway, hub, req, res, '');
      } catch (error) {
        exchange.fail(error);
        return;
      }
      // Read now: `req` dies when this handler returns.
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      checkStreamable(service, request).then(
        () => {
          const upgraded = exchange.handOver(101, (response) =>
            response.upgrade<SocketData>(
              { request, open: false, alive: true },
              key,
              protocol,
              extensions,
              context,
            ),
          );
          if (!upgraded) hub.release();
        },
        (error: unknown) => {
          hub.release();
          exchange.fail(error);
        },
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      data.open = true;
      data.subscription = hub.open(data.request, socketSink(ws, options.closeGraceMs));
    },
    message: (ws, message) => {
      const subscription = ws.getUserData().subscription;
      if (message.byteLength > frameBytesMax) {
        subscription?.close(CloseCode.frameTooLarge, `client frames are limited to ${frameBytesMax} bytes`);
        return;
      }
      subscription?.heard();
    },
    pong: (ws) => {
      ws.getUserData().subscription?.heard();
    },
    drain: (ws) => {
      ws.getUserData().subscription?.drained();
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.open = false;
      data.alive = false;
      data.subscription?.gone();
    },
  });
  // uWS passes a GET without an upgrade on to the next matching route: this one.
  app.get(streamPath, (res) => {
    gateway
      .begin(res, routeLabel)
      .fail(
        new ServiceError(
          'upgrade_required',
          'This is a websocket endpoint (the same stream as SSE is at /events)',
        ),
        [['Upgrade', 'websocket']],
      );
  });
};

const socketSink = (ws: WebSocket<SocketData>, closeGraceMs: number): FrameSink => {
  // One lookup: every frame of every subscriber passes here, and each uWS call crosses into C++.
  const data = ws.getUserData();
  return {
    send: (frame) => {
      if (data.open) ws.send(frame, false, false);
    },
    buffered: () => (data.open ? ws.getBufferedAmount() : 0),
    close: (code, reason) => {
      if (!data.open) return;
      data.open = false;
      ws.end(code, reason);
      setTimeout(() => {
        if (data.alive) ws.close();
      }, closeGraceMs).unref();
    },
  };
};
