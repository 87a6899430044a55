// Reads a request body from uWS with a size limit decided while the body streams in: a declared
// Content-Length over the limit is refused before reading, and an undeclared (chunked) body is
// refused as soon as the running total crosses it, so a client cannot make the node buffer more
// than the limit. Refusals close the connection: the unread rest of the body must not be parsed
// as the next request.

import type { HttpResponse } from 'uWebSockets.js';

import { ServiceError } from '../errors.js';
import type { Exchange } from './exchange.js';

const tooLarge = (bytesMax: number): ServiceError =>
  new ServiceError('payload_too_large', `The request body exceeds ${bytesMax} bytes`);

/** Throws payload_too_large when a declared Content-Length is over the limit. */
export const checkDeclaredLength = (contentLength: string, bytesMax: number): void => {
  if (contentLength !== '' && Number(contentLength) > bytesMax) throw tooLarge(bytesMax);
};

/**
 * Collects the body and hands it over as text. Must be called synchronously inside the uWS handler,
 * after the exchange attached onAborted.
 */
export const readBody = (
  res: HttpResponse,
  exchange: Exchange,
  bytesMax: number,
  onBody: (text: string) => void,
): void => {
  let chunks: Buffer[] | undefined;
  let bytes = 0;
  res.onData((chunk, isLast) => {
    if (!exchange.isOpen) return;
    bytes += chunk.byteLength;
    if (bytes > bytesMax) {
      exchange.fail(tooLarge(bytesMax), undefined, true);
      return;
    }
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
