// One HTTP request/response on uWS. It encodes the uWS rules in one place: onAborted is attached
// before any async work; after an abort (or after answering) `res` is never touched again; every
// write happens inside res.cork so status, headers and body leave in one syscall.

import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';

import type { HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import { errorReply } from './error-response.js';
import type { Header, Reply } from './reply.js';
import { jsonContentType } from './reply.js';

/** Called once per request with the route label, the status and the time to answer. */
export type RequestObserver = (route: string, status: number, durationMs: number) => void;

/** Reported to the observer for requests whose client went away before the answer (nginx's code). */
export const clientClosedStatus = 499;

/** Server-wide callbacks every exchange reports to; one object shared by all requests. */
export interface ExchangeHooks {
  readonly onInternalError: (requestId: string, error: unknown, route: string) => void;
  readonly onRequest: RequestObserver | undefined;
  /** Counts requests in flight so close() can wait for them. */
  readonly onOpen: () => void;
  readonly onSettle: () => void;
  /** Reserves request-body bytes in the node's budget; false when the budget is spent. */
  readonly onHold: (bytes: number) => boolean;
  /** Gives back what an exchange held, once it settles. */
  readonly onRelease: (bytes: number) => void;
  /** True while connections must be closed after their answer (file descriptors nearly spent). */
  readonly closeConnections: () => boolean;
}

/**
 * Bodies longer than this (UTF-16 units) are sent in slices and held in the budget (Exchange.send).
 * Shorter ones go whole, as uWS writes them best: slicing a 0.5 MB window cost 8-12 % of its read
 * rate, and the kernel's socket buffer takes much of such a body from a client that reads nothing.
 */
export const largeBodyChars = 1024 * 1024;
const largeBodySliceChars = 256 * 1024;
/** A client that takes nothing of a large body for this long is cut off (uWS's own HTTP idle time). */
const largeBodyStallMs = 10_000;

/**
 * `body` as UTF-8 slices of about `sliceChars`, the next one only after a pass of the event loop, so
 * other requests are served between them. A slice never ends between the two halves of a surrogate
 * pair: each is encoded on its own.
 */
export async function* bodySlices(body: string, sliceChars: number): AsyncGenerator<Uint8Array> {
  let start = 0;
  while (start < body.length) {
    let end = Math.min(body.length, start + sliceChars);
    const last = body.charCodeAt(end - 1);
    // A slice of one high surrogate takes its pair instead of shrinking to nothing.
    if (end < body.length && last >= 0xd800 && last <= 0xdbff) end += end - 1 > start ? -1 : 1;
    yield Buffer.from(body.slice(start, end), 'utf8');
    start = end;
    if (start < body.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

const statusLines = new Map<number, string>();

const statusLine = (status: number): string => {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
};

export class Exchange {
  private state: 'open' | 'aborted' | 'answered' = 'open';
  private readonly startMs: number;
  private heldBytes = 0;

  constructor(
    private readonly res: HttpResponse,
    readonly route: string,
    private readonly hooks: ExchangeHooks,
    /** A HEAD request: answered with the headers a GET would get, never a body (RFC 9110 §9.3.2). */
    private readonly headOnly = false,
  ) {
    this.startMs = hooks.onRequest === undefined ? 0 : performance.now();
    hooks.onOpen();
    res.onAborted(() => this.settle('aborted', clientClosedStatus));
  }

  /** False once answered or aborted: later writes are dropped. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /**
   * Reserves `bytes` of the node's budget for request bodies until this request is answered (its
   * body, parsed and proposed, lives that long); false when the budget is spent.
   */
  hold(bytes: number): boolean {
    if (!this.hooks.onHold(bytes)) return false;
    this.heldBytes += bytes;
    return true;
  }

  /** Runs an async handler and answers with its reply or its error. */
  run<Input>(handler: (input: Input) => Promise<Reply>, input: Input): void {
    handler(input).then(
      (reply) => this.send(reply),
      (error: unknown) => this.fail(error),
    );
  }

  /** Answers with an error rendered by error-response.ts; `extra` adds headers such as Allow. */
  fail(error: unknown, extra?: readonly Header[], closeConnection = false): void {
    if (!this.isOpen) return;
    const reply = errorReply(
      error,
      (requestId, cause) => this.hooks.onInternalError(requestId, cause, this.route),
      extra,
    );
    this.send(reply, closeConnection);
  }

  send(reply: Reply, closeConnection = false): void {
    if (!this.isOpen) return;
    const res = this.res;
    closeConnection ||= this.hooks.closeConnections();
    if (
      reply.body !== undefined &&
      reply.body.length > largeBodyChars &&
      !this.headOnly &&
      !closeConnection
    ) {
      // A large body (a long LLM window, a page of long messages) leaves in slices, one per pass of
      // the loop and only as fast as the client reads: written whole, encoding and copying 17 MB
      // held the loop for about 150 ms per request, and a client that did not read left uWS
      // buffering all of it. Held until the client has it all, in the budget request bodies draw
      // from: uWS buffered the answers of 150 clients that read nothing until the node's RSS grew
      // past 3.6 GiB, and on.
      if (!this.hold(Buffer.byteLength(reply.body, 'utf8'))) {
        this.fail(
          new ServiceError('overloaded', 'The node holds too many answer bytes not yet read; retry shortly', {
            retryAfterSeconds: 1,
          }),
        );
        return;
      }
      const headers: Header[] = [
        ['Content-Type', reply.contentType ?? jsonContentType],
        ...(reply.headers ?? []),
      ];
      void this.stream(headers, bodySlices(reply.body, largeBodySliceChars), largeBodyStallMs, reply.status);
      return;
    }
    res.cork(() => {
      res.writeStatus(statusLine(reply.status));
      if (reply.body !== undefined) res.writeHeader('Content-Type', reply.contentType ?? jsonContentType);
      if (reply.headers !== undefined)
        for (const [name, value] of reply.headers) res.writeHeader(name, value);
      if (reply.body === undefined) res.endWithoutBody(undefined, closeConnection);
      else if (this.headOnly) res.endWithoutBody(Buffer.byteLength(reply.body), closeConnection);
      else res.end(reply.body, closeConnection);
    });
    this.settle('answered', reply.status);
  }

  /**
   * Hands the connection over to a longer-lived owner (a websocket upgrade, an event stream): `perform`
   * writes what it needs inside one cork, and the request counts as answered with `status`. False,
   * without calling `perform`, when the client has gone already.
   */
  handOver(status: number, perform: (res: HttpResponse) => void): boolean {
    if (!this.isOpen) return false;
    this.res.cork(() => perform(this.res));
    this.settle('answered', status);
    return true;
  }

  /**
   * Answers 200 with a body of unknown length (chunked), written as `chunks` yields it and only as
   * fast as the client reads (uWS backpressure). A client that goes away stops the iteration; a
   * source that throws ends the connection without the body's end, so the client sees it cut short.
   */
  async stream(
    headers: readonly Header[],
    chunks: AsyncIterable<Uint8Array>,
    /** A client that reads nothing for this long is cut off (it would hold the source open forever). */
    stallTimeoutMs = 60_000,
    status = 200,
  ): Promise<void> {
    if (!this.isOpen) return;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      for (const [name, value] of headers) res.writeHeader(name, value);
    });
    try {
      for await (const chunk of chunks) {
        if (!this.isOpen) return;
        let sent = false;
        res.cork(() => {
          sent = res.write(chunk);
        });
        // uWS kept what it could not send; wait until the socket drained before the next chunk.
        if (!sent && !(await this.writable(stallTimeoutMs))) {
          res.close();
          this.settle('aborted', clientClosedStatus);
          return;
        }
      }
      if (!this.isOpen) return;
      res.cork(() => res.end());
      this.settle('answered', status);
    } catch (error) {
      if (this.isOpen) {
        this.hooks.onInternalError('stream', error, this.route);
        res.close();
        this.settle('aborted', 500);
      }
    }
  }

  private wakeWriter: (() => void) | undefined;

  /** True once the socket drained; false after `timeoutMs` without (or once the client left). */
  private writable(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeWriter = undefined;
        resolve(false);
      }, timeoutMs);
      this.wakeWriter = () => {
        clearTimeout(timer);
        resolve(false);
      };
      this.res.onWritable(() => {
        this.wakeWriter = undefined;
        clearTimeout(timer);
        // Resume after uWS has finished this writable event: a write made while it is still being
        // dispatched (a promise continuation runs that early) can leave uWS waiting for no further
        // event, and the stream stalls.
        setImmediate(() => resolve(true));
        return true;
      });
    });
  }

  private settle(state: 'aborted' | 'answered', status: number): void {
    if (this.state !== 'open') return;
    this.state = state;
    this.wakeWriter?.();
    if (this.heldBytes > 0) this.hooks.onRelease(this.heldBytes);
    this.hooks.onSettle();
    const observer = this.hooks.onRequest;
    if (observer !== undefined) observer(this.route, status, performance.now() - this.startMs);
  }
}
