// The long-lived bidi stream between nodes, both the Raft transport's (raft/transport/peer-link.ts)
// and the cluster's forwarding stream (src/cluster/remote/forward-stream.ts): the caller dials with
// the cluster secret in metadata, and the server's first message, HELLO, confirms the call passed
// authentication, so the caller knows the stream really is up rather than merely dialed. A dial
// not confirmed within the connect timeout counts as broken (a black-holed peer).

import { status } from '@grpc/grpc-js';
import type { Client, ClientDuplexStream, ServerDuplexStream, ServiceError } from '@grpc/grpc-js';

import { secretMetadata } from './auth.js';
import { deserializeBytes, serializeBytes } from './grpc.js';

/** The server's first message on a stream. Not a valid frame or msgpack array of either protocol. */
export const HELLO = Buffer.from([1]);

export const isHello = (bytes: Uint8Array): boolean => bytes.length === 1 && bytes[0] === 1;

/** Server side: the call passed authentication; tell the caller its stream is up. */
export const sendHello = (call: ServerDuplexStream<Uint8Array, Uint8Array>): void => {
  call.write(HELLO);
};

/** Why a stream broke, for logs and for the caller's own reasons (never carries the secret). */
export interface StreamBreak {
  readonly code: number;
  readonly details: string;
}

export interface HelloStreamOptions {
  readonly path: string;
  readonly clusterSecret: string | undefined;
  /** A dial not confirmed by HELLO within this long is broken with DEADLINE_EXCEEDED. */
  readonly connectTimeoutMs: number;
  /** HELLO arrived: the stream is up. */
  readonly onOpen: () => void;
  /** A message after HELLO. */
  readonly onMessage?: (bytes: Uint8Array) => void;
  /** The call's buffer drained after a write returned false. */
  readonly onDrain?: () => void;
  /** The call failed, the server ended it, or HELLO did not come in time. At most once. */
  readonly onBroken: (cause: StreamBreak) => void;
}

export interface HelloStream {
  readonly call: ClientDuplexStream<Uint8Array, Uint8Array>;
  /** Gives the call up: it is cancelled and none of its later events reach the handlers. */
  cancel(): void;
}

/** Dials `options.path` on `client` and waits for the server's HELLO. */
export const dialHelloStream = (client: Client, options: HelloStreamOptions): HelloStream => {
  const call = client.makeBidiStreamRequest<Uint8Array, Uint8Array>(
    options.path,
    serializeBytes,
    deserializeBytes,
    secretMetadata(options.clusterSecret),
  );
  let state: 'connecting' | 'open' | 'done' = 'connecting';
  const broken = (cause: StreamBreak): void => {
    if (state === 'done') return;
    state = 'done';
    clearTimeout(connectTimer);
    options.onBroken(cause);
  };
  call.on('data', (bytes: Uint8Array) => {
    if (state === 'connecting' && isHello(bytes)) {
      state = 'open';
      clearTimeout(connectTimer);
      options.onOpen();
    } else if (state !== 'done') options.onMessage?.(bytes);
  });
  call.on('drain', () => {
    if (state !== 'done') options.onDrain?.();
  });
  call.on('error', (error: ServiceError) => broken({ code: error.code, details: error.details }));
  // The server ending the stream without an error (it is shutting down) is a break as well.
  call.on('end', () => broken({ code: status.UNAVAILABLE, details: 'stream ended by peer' }));
  const connectTimer = setTimeout(() => {
    if (state === 'connecting')
      broken({ code: status.DEADLINE_EXCEEDED, details: 'peer did not answer the dial in time' });
  }, options.connectTimeoutMs);
  connectTimer.unref();
  return {
    call,
    cancel: () => {
      state = 'done';
      clearTimeout(connectTimer);
      call.cancel();
    },
  };
};
