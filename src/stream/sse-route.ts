// GET /v1/contexts/:id/events: the stream as Server-Sent Events, for clients and proxies that cannot
// speak websockets. Same checks, same Subscription, same frames: each is one event whose `event:` is
// the frame's type, `data:` its JSON and `id:` the cursor to resume from after it (the version; for a
// `gap`, the version before `actual`). A reconnecting EventSource sends that id back as
// Last-Event-ID, which takes the place of ?cursor. The client cannot send frames, so the heartbeat
// counts the pings the socket takes as signs of life; a stream the server ends gets a last `close`
// event with the close code a websocket would have had.

import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';

import type { ContextService } from '../api/service.js';
import type { Gateway } from '../http/gateway.js';
import type { StreamHub, SubscribeRequest } from './hub.js';
import { admitStream, checkStreamable } from './stream-request.js';
import type { FrameSink, Subscription } from './subscription.js';

export const eventsPath = '/v1/contexts/:id/events';
const routeLabel = `GET ${eventsPath}`;

export interface SseRouteOptions {
  readonly hub: StreamHub;
  readonly service: ContextService;
}

export const registerSseRoute = (app: TemplatedApp, gateway: Gateway, options: SseRouteOptions): void => {
  const { hub, service } = options;
  app.get(eventsPath, (res, req) => {
    const exchange = gateway.begin(res, routeLabel);
    let request: SubscribeRequest;
    try {
      request = admitStream(gateway, hub, req, res, req.getHeader('last-event-id'));
    } catch (error) {
      exchange.fail(error);
      return;
    }
    checkStreamable(service, request).then(
      () => {
        const stream = new SseStream(res);
        const started = exchange.handOver(200, (response) => {
          response.writeStatus('200 OK');
          response.writeHeader('Content-Type', 'text/event-stream; charset=utf-8');
          response.writeHeader('Cache-Control', 'no-cache');
          // nginx would otherwise buffer the stream.
          response.writeHeader('X-Accel-Buffering', 'no');
          response.write(': fastpaca event stream\n\n');
        });
        if (!started) {
          hub.release();
          return;
        }
        res.onAborted(() => stream.aborted());
        res.onWritable(() => stream.writable());
        stream.subscription = hub.open(request, stream);
      },
      (error: unknown) => {
        hub.release();
        exchange.fail(error);
      },
    );
  });
};

class SseStream implements FrameSink {
  subscription: Subscription | undefined;
  private open = true;
  /**
   * Bytes written since uWS last had nothing held for this client: what it may not have taken yet.
   * uWS keeps no count for an HTTP response (its write offset only moves for end/tryEnd, never for
   * chunked writes), so it is derived from write(), which returns true when what uWS held before the
   * chunk has all gone out (uWS sends that first). The chunk itself leaves with the cork, and what of
   * it the socket does not take is not counted: the count runs at most one frame behind. It never
   * counts bytes uWS does not hold, so a replay waiting for the writable event never waits for one
   * that cannot come.
   */
  private unsent = 0;

  constructor(private readonly res: HttpResponse) {}

  send(frame: string, type: string, resumeFrom: number | undefined): void {
    const id = resumeFrom === undefined ? '' : `id: ${resumeFrom}\n`;
    const flushed = this.write(`${id}event: ${type}\ndata: ${frame}\n\n`);
    // No client frames exist in SSE: a ping the socket takes at once is the sign of life.
    if (flushed && type === 'ping') this.subscription?.heard();
  }

  buffered(): number {
    return this.open ? this.unsent : 0;
  }

  close(code: number, reason: string): void {
    if (!this.open) return;
    this.write(`event: close\ndata: ${JSON.stringify({ type: 'close', code, reason })}\n\n`);
    this.open = false;
    this.res.cork(() => this.res.end());
  }

  aborted(): void {
    this.open = false;
    this.subscription?.gone();
  }

  /**
   * uWS's writable event. With a handler attached, uWS does not send what it holds by itself: the
   * next write does. So one is made (an SSE comment, which clients ignore); once it goes out, the
   * client has taken everything before it and the subscription may go on. False asks uWS to call
   * again when the socket can take more.
   */
  writable(): boolean {
    if (!this.open) return true;
    if (!this.write(':\n\n')) return false;
    this.subscription?.drained();
    return true;
  }

  /** True when what uWS held before this chunk has gone out (see `unsent`). */
  private write(chunk: string): boolean {
    if (!this.open) return false;
    let flushed = false;
    this.res.cork(() => {
      flushed = this.res.write(chunk);
    });
    this.unsent = flushed ? 0 : this.unsent + Buffer.byteLength(chunk);
    return flushed;
  }
}
