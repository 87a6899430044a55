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
        res.onWritable(() => {
          stream.writable();
          return true;
        });
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
  private written = 0;

  constructor(private readonly res: HttpResponse) {}

  send(frame: string, type: string, resumeFrom: number | undefined): void {
    const id = resumeFrom === undefined ? '' : `id: ${resumeFrom}\n`;
    const flushed = this.write(`${id}event: ${type}\ndata: ${frame}\n\n`);
    // No client frames exist in SSE: a ping the socket takes at once is the sign of life.
    if (flushed && type === 'ping') this.subscription?.heard();
  }

  buffered(): number {
    return this.open ? Math.max(0, this.written - this.res.getWriteOffset()) : 0;
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

  writable(): void {
    this.subscription?.drained();
  }

  /** True when the chunk went out without adding backpressure. */
  private write(chunk: string): boolean {
    if (!this.open) return false;
    this.written += Buffer.byteLength(chunk);
    let flushed = false;
    this.res.cork(() => {
      flushed = this.res.write(chunk);
    });
    return flushed;
  }
}
