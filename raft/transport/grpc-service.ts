// The Raft transport's gRPC service between hosts (net/grpc.ts has the byte methods it is built of):
//
//   Stream   (bidi)   client → server: frames. server → client: one HELLO once the call passed
//                     authentication (net/hello-stream.ts), so the client knows the stream is up.
//   Snapshot (client) client → server: snapshot chunks in order. server → client: the answer.

import type { ServiceDefinition } from '@grpc/grpc-js';

import { bytesMethod } from '../../net/grpc.js';

export const STREAM_PATH = '/fastpaca.raft.v1.Transport/Stream';
export const SNAPSHOT_PATH = '/fastpaca.raft.v1.Transport/Snapshot';

export const transportService: ServiceDefinition = {
  Stream: bytesMethod(STREAM_PATH, true, true),
  Snapshot: bytesMethod(SNAPSHOT_PATH, true, false),
};
