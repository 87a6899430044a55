// gRPC between fastpaca nodes, shared by the Raft transport (raft/transport/) and the cluster's
// forwarding and remote calls (src/cluster/remote/). Services are defined in code (no protobuf
// step) and messages are opaque bytes at this layer: each protocol's codec encodes them before they
// reach grpc-js, so encoding errors surface in our code rather than inside a stream, and a send
// queue can hold ready-to-write bytes. Also here: the one message-size limit every node agrees on,
// and the channel options and credentials of servers and clients.

import { credentials, ServerCredentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ChannelOptions, MethodDefinition } from '@grpc/grpc-js';

import { PEER_STREAM_WINDOW_BYTES } from './peer-windows.js';

/** Room for gRPC and codec framing around a payload of frameBytesMax. */
const MESSAGE_SLACK_BYTES = 64 * 1024;

/**
 * Default limit of one message on a channel between nodes. Batches are cut far smaller (frames,
 * forwarded requests), so this bounds only what cannot be cut: one Raft entry as large as a request
 * body may make it, a snapshot pair that holds one, an answer. It is the same on every node,
 * whatever each one's configuration, so an entry one node accepted can always reach the others: a
 * leader whose entry no frame could carry would resend it forever and wedge its group. Peers are
 * authenticated, so the limit guards against bugs, not attackers.
 */
export const PEER_MESSAGE_BYTES_MAX = 256 * 1024 * 1024;

/** Default size batches are cut to before they become one message (a frame, a forward batch). */
export const PEER_BATCH_BYTES_TARGET = 8 * 1024 * 1024;

export const serializeBytes = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export const deserializeBytes = (bytes: Buffer): Buffer => bytes;

/** A method whose messages are opaque bytes (our codecs encode them), unary or streamed either way. */
export const bytesMethod = (
  path: string,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<Uint8Array, Uint8Array> => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: serializeBytes,
  requestDeserialize: deserializeBytes,
  responseSerialize: serializeBytes,
  responseDeserialize: deserializeBytes,
});

export interface ChannelTuning {
  readonly frameBytesMax: number;
  readonly reconnectBackoffMs: { readonly initial: number; readonly max: number };
}

/** Options shared by the server and every client channel. */
const messageLimits = (frameBytesMax: number): ChannelOptions => ({
  'grpc.max_send_message_length': frameBytesMax + MESSAGE_SLACK_BYTES,
  'grpc.max_receive_message_length': frameBytesMax + MESSAGE_SLACK_BYTES,
});

export const serverOptions = (tuning: ChannelTuning): ChannelOptions => messageLimits(tuning.frameBytesMax);

export const clientOptions = (tuning: ChannelTuning): ChannelOptions => ({
  ...messageLimits(tuning.frameBytesMax),
  // Our own backoff paces redials; the channel's (default up to 120 s) must not stretch it.
  'grpc.initial_reconnect_backoff_ms': tuning.reconnectBackoffMs.initial,
  'grpc.max_reconnect_backoff_ms': tuning.reconnectBackoffMs.max,
  // Detect a peer that vanished without closing its socket (power loss, partition).
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // One connection per client object: the Raft stream and a snapshot transfer must not share a
  // TCP connection (a large snapshot would delay heartbeats), nor two transports in one process.
  'grpc.use_local_subchannel_pool': 1,
  // What a peer answers (remote reads, forwarded results) may be large: the same wide window a
  // node grants an authenticated peer's calls (peer-windows.ts), for the answers on this side.
  'grpc-node.flow_control_window': PEER_STREAM_WINDOW_BYTES,
});

/**
 * Mutual TLS between nodes (PEM): this node's certificate and key, and the CA that signed every
 * node's certificate. A server then accepts only callers presenting a certificate of that CA, and a
 * client only servers whose certificate that CA signed for the address it dials. The cluster secret
 * is still checked on every call: TLS encrypts and authenticates machines, the secret the cluster.
 */
export interface PeerTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Plain TCP without `tls` (a private network), else mutual TLS. */
export const peerChannelCredentials = (tls: PeerTls | undefined): ChannelCredentials =>
  tls === undefined ? credentials.createInsecure() : credentials.createSsl(tls.ca, tls.key, tls.cert);

/** Plain TCP without `tls`, else TLS that requires and verifies a client certificate. */
export const peerServerCredentials = (tls: PeerTls | undefined): ServerCredentials =>
  tls === undefined
    ? ServerCredentials.createInsecure()
    : ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
