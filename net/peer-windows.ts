// HTTP/2 flow-control windows between nodes. A stream's receiver lets its sender have only a window
// of unread bytes (64 KiB by default, per stream and per connection), and opens it again as its
// event loop reads. Between nodes that default is the bottleneck: a leader replicating 32 KiB
// entries to a follower whose loop turns every few hundred ms under load moved about two entries
// per turn, its Raft stream stayed unwritable, and frames (heartbeats among them, behind megabytes
// of entries) waited up to 1.8 s in the link's queue, past the election timeout: groups re-elected
// under the overload scenario (test/fault/overload.test.ts) although no turn took a second.
//
// So a session that proved the cluster secret gets wide windows (etcd's and TiKV's gRPC transports
// raise grpc-go's windows the same way). Only then: an unauthenticated caller keeps the default
// 64 KiB, so a flood of refused calls still cannot make this node buffer (authenticate-first.ts).
// The peer's bytes are trusted data the node reads anyway; the windows bound how much of it may be
// in flight, which is what lets one turn's batch cross in one round trip.

import type { Http2Session } from 'node:http2';

/** Unread bytes one authenticated stream may have in flight (a whole frame of a turn's batch). */
export const PEER_STREAM_WINDOW_BYTES = 8 * 1024 * 1024;
/** Unread bytes one authenticated connection may have in flight, across its streams. */
export const PEER_CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024;

const widened = new WeakSet<Http2Session>();

/**
 * Widens the windows of `session` (the server side of a peer's connection) once: the connection's
 * own window, and every stream's initial window through a SETTINGS frame (which, by RFC 9113
 * §6.9.2, also grows the windows of streams already open, the calling one among them).
 */
export const widenPeerWindows = (session: Http2Session | undefined): void => {
  if (session === undefined || session.destroyed || session.closed || widened.has(session)) return;
  widened.add(session);
  try {
    session.setLocalWindowSize(PEER_CONNECTION_WINDOW_BYTES);
    session.settings({ initialWindowSize: PEER_STREAM_WINDOW_BYTES });
  } catch {
    // A session closing under us: its next connection is widened when it authenticates.
  }
};
