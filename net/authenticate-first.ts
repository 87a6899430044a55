// Authentication before buffering. grpc-js reads a unary call's whole request message (up to the
// receive limit, 256 MiB here so that any entry a node accepted can travel) before the handler
// runs, so a handler's own secret check came too late: eight unauthenticated 200 MiB messages would
// have been held in memory before being refused. This interceptor checks the cluster secret on the
// call's metadata, before any message is read: a call without it is answered UNAUTHENTICATED at
// once, its stream is never read (grpc-js starts reading only for the handler), and the bytes the
// caller keeps sending are refused at the HTTP/2 level: after the answer the stream is reset
// (RST_STREAM), because grpc-js would otherwise read and drop everything a hostile caller keeps
// sending, and that garbage alone cost ~25 MiB of RSS under a flood of 200 MiB messages. Every method
// of every service on the node's gRPC server passes through it; the handlers' own checks stay as a
// second line.

import { constants, type ServerHttp2Stream } from 'node:http2';

import {
  ServerInterceptingCall,
  status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';

import type { SecretCheck } from './auth.js';
import { widenPeerWindows } from './peer-windows.js';

export const authenticateFirst =
  (checkSecret: SecretCheck, onRefused: () => void = () => {}): ServerInterceptor =>
  (_method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, passOn) => {
            if (checkSecret(metadata)) {
              // A peer: its connection may have wide flow-control windows (peer-windows.ts).
              widenPeerWindows(http2StreamOf(call)?.session);
              passOn(metadata);
              return;
            }
            onRefused();
            call.sendStatus({ code: status.UNAUTHENTICATED, details: 'missing or wrong cluster secret' });
            refuseRest(call);
          },
        }),
    });

/**
 * Resets the call's HTTP/2 stream so the caller cannot keep sending. grpc-js gives interceptors no
 * handle on the stream: the first interceptor receives grpc-js's own call object, whose `stream`
 * field is the HTTP/2 stream (grpc-js is pinned; test/cluster/grpc-auth-flood.test.ts measures the
 * effect and fails if a new version hides it, and so does test/raft/transport/peer-windows.test.ts
 * for the windows). Without it the refusal still holds, only the caller's bytes are read and
 * dropped.
 */
const refuseRest = (call: ServerInterceptingCallInterface): void => {
  const stream = http2StreamOf(call);
  if (stream !== undefined && !stream.closed) stream.close(constants.NGHTTP2_REFUSED_STREAM);
};

const http2StreamOf = (call: ServerInterceptingCallInterface): ServerHttp2Stream | undefined => {
  const stream = (call as unknown as { readonly stream?: unknown }).stream;
  return isHttp2Stream(stream) ? stream : undefined;
};

const isHttp2Stream = (value: unknown): value is ServerHttp2Stream =>
  typeof value === 'object' && value !== null && 'close' in value && 'closed' in value && 'respond' in value;

/** HTTP/2 streams one connection may have open at once (every call is one stream). */
export const MAX_CONCURRENT_STREAMS = 1_000;
