// Reads a request body from uWS under three bounds decided while it streams in: the body limit
// (413), the node's budget for request bytes held in memory (503 overloaded), and a deadline for the
// whole body (408, enforced by the gateway). A declared Content-Length is checked against the body
// limit before reading; an undeclared (chunked) body as its running total grows, so a client can
// never make the node buffer more than the limits.
//
// The budget is drawn on as bytes arrive, declared or not: memory is held only for bytes received.
// Reserving a declared length up front let clients that declare 1 MiB and trickle a byte every few
// seconds hold the whole budget with almost no traffic (260 of them kept all other clients' writes
// at 503 for as long as they trickled).
//
// A refusal must be readable. Closing a socket while the client is still sending makes the kernel
// answer with a reset, and the client gets EPIPE instead of the 413 (seen in 49 of 100 tries). So,
// like nginx and Node's own server (a lingering close):
// - a declared body refused up front is answered at once on a kept-alive connection: uWS reads and
//   drops the declared rest by itself, and the next request on the connection is parsed after it;
// - a body refused while streaming (over the limit, or out of budget) is read and dropped to its
//   end, then answered;
// - either way only up to `lingerBytesMax` more bytes: past that the answer goes out and the
//   connection is closed, because waiting for an endless body would be a way to hold a connection.

import type { HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../api/errors.js';
import type { Exchange } from './exchange.js';

export interface BodyRules {
  /** The body limit (413 past it). */
  readonly bytesMax: number;
  /** How much of a refused body's rest is still read and dropped before the connection is closed. */
  readonly lingerBytesMax: number;
  /** Starts the body's deadline (408 when it passes); returns the function that stops it. */
  readonly watch: (exchange: Exchange) => () => void;
}

const tooLarge = (bytesMax: number): ServiceError =>
  new ServiceError('payload_too_large', `The request body exceeds ${bytesMax} bytes`);

const noRoom = (): ServiceError =>
  new ServiceError('overloaded', 'The node holds too many request bytes; retry shortly', {
    retryAfterSeconds: 1,
  });

/** The Content-Length header as a number, or undefined when the body is chunked (or the header odd). */
export const declaredLength = (contentLength: string): number | undefined => {
  if (contentLength === '') return undefined;
  const length = Number(contentLength);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
};

/**
 * Collects the body and hands it over as text. Must be called synchronously inside the uWS handler,
 * after the exchange attached onAborted.
 */
export const readBody = (
  res: HttpResponse,
  exchange: Exchange,
  rules: BodyRules,
  declared: number | undefined,
  onBody: (text: string) => void,
): void => {
  if (declared !== undefined && declared > rules.bytesMax) {
    exchange.fail(tooLarge(rules.bytesMax), undefined, declared > rules.lingerBytesMax);
    return;
  }
  const unwatch = rules.watch(exchange);
  let chunks: Buffer[] | undefined;
  let bytes = 0;
  let refusal: ServiceError | undefined;
  let dropped = 0;
  res.onData((chunk, isLast) => {
    if (!exchange.isOpen) return;
    if (refusal === undefined) {
      bytes += chunk.byteLength;
      if (bytes > rules.bytesMax) refusal = tooLarge(rules.bytesMax);
      else if (!exchange.hold(chunk.byteLength)) refusal = noRoom();
      if (refusal !== undefined) chunks = undefined;
    } else {
      dropped += chunk.byteLength;
    }
    if (refusal !== undefined) {
      if (isLast || dropped > rules.lingerBytesMax) {
        unwatch();
        exchange.fail(refusal, undefined, !isLast);
      }
      return;
    }
    if (isLast) unwatch();
    if (isLast && chunks === undefined) {
      // The common single-chunk body: decoded right here, before uWS neuters the buffer, so no copy.
      onBody(Buffer.from(chunk).toString('utf8'));
      return;
    }
    // uWS reuses the chunk's memory after this callback returns: keep a copy.
    (chunks ??= []).push(Buffer.copyBytesFrom(new Uint8Array(chunk)));
    if (isLast) onBody(Buffer.concat(chunks, bytes).toString('utf8'));
  });
};
