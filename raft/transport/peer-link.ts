// The outbound half of one peer pair: a long-lived gRPC stream this host dials to one peer and
// writes frames on (each direction of a pair is dialed by its sender, as in CockroachDB's and
// TiKV's Raft transports, so neither side waits for the other to connect back). The link redials
// with exponential backoff when the stream breaks. Its queue is bounded: while connecting, and
// while grpc-js reports the stream's buffer full, frames wait there; beyond the bound, and while
// the peer is down, frames are refused so the caller can drop and count them (Raft retries).

import { Client } from '@grpc/grpc-js';
import type { NodeId } from '../core/types.js';
import { clientOptions, peerChannelCredentials } from '../../net/grpc.js';
import type { PeerTls } from '../../net/grpc.js';
import { dialHelloStream } from '../../net/hello-stream.js';
import type { HelloStream, StreamBreak } from '../../net/hello-stream.js';
import { backoffDelayMs } from './backoff.js';
import type { BackoffMs } from './backoff.js';
import { STREAM_PATH } from './grpc-service.js';
import type { TransportStats } from './transport-stats.js';

/** Why a link failed, for logs (never carries the secret). */
export type LinkError = StreamBreak;

export interface PeerLinkOptions {
  readonly peer: NodeId;
  readonly address: string;
  readonly clusterSecret: string | undefined;
  readonly tls: PeerTls | undefined;
  readonly frameBytesMax: number;
  readonly reconnectBackoffMs: BackoffMs;
  /** A dial not confirmed by the server within this long counts as failed (a black-holed peer). */
  readonly connectTimeoutMs: number;
  readonly sendQueueFramesMax: number;
  readonly random: () => number;
  readonly stats: TransportStats;
  /** Frames may have been lost: the host should tell the groups' cores to probe this peer. */
  readonly onUnreachable: (peer: NodeId) => void;
  readonly onError: (peer: NodeId, error: LinkError) => void;
}

/** An encoded frame and the number of Raft messages in it (for the counters). */
export interface OutboundFrame {
  readonly bytes: Uint8Array;
  readonly messageCount: number;
}

// connecting: a call is dialing and not yet confirmed by the server's HELLO; frames queue.
// open: frames are written. backoff: the peer is down; frames are refused until the next dial.
type LinkState = 'connecting' | 'open' | 'backoff' | 'closed';

export class PeerLink {
  readonly address: string;
  private readonly options: PeerLinkOptions;
  private readonly client: Client;
  private state: LinkState = 'connecting';
  private stream: HelloStream | undefined;
  // Invariant: queue.length <= options.sendQueueFramesMax.
  private queue: OutboundFrame[] = [];
  /** False after a write returned false, until the call's 'drain'. */
  private writable = true;
  private failures = 0;
  private everOpened = false;
  private redialTimer: NodeJS.Timeout | undefined;

  constructor(options: PeerLinkOptions) {
    this.options = options;
    this.address = options.address;
    this.client = new Client(options.address, peerChannelCredentials(options.tls), clientOptions(options));
    this.dial();
  }

  /** False while the peer is down (or the link closed): `send` would refuse any frame. */
  isUp(): boolean {
    return this.state === 'connecting' || this.state === 'open';
  }

  /** Write or queue `frame`. False if refused (peer down, queue full, closed): the caller drops it. */
  send(frame: OutboundFrame): boolean {
    if (!this.isUp()) return false;
    if (this.state === 'open' && this.writable && this.queue.length === 0) {
      this.write(frame);
      return true;
    }
    if (this.queue.length >= this.options.sendQueueFramesMax) return false;
    this.queue.push(frame);
    return true;
  }

  /**
   * The peer just proved it is up (a frame from it arrived): a link backing off redials now instead
   * of when its timer fires, so a restarted peer hears from us in milliseconds, not seconds.
   */
  peerAlive(): void {
    if (this.state !== 'backoff') return;
    clearTimeout(this.redialTimer);
    this.dial();
  }

  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.redialTimer);
    this.dropQueue();
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.client.close();
  }

  private dial(): void {
    this.state = 'connecting';
    this.writable = true;
    // A stream we gave up on is cancelled and silent: its events never touch the current one.
    this.stream = dialHelloStream(this.client, {
      path: STREAM_PATH,
      clusterSecret: this.options.clusterSecret,
      connectTimeoutMs: this.options.connectTimeoutMs,
      onOpen: () => this.opened(),
      onDrain: () => {
        this.writable = true;
        this.flush();
      },
      onBroken: (cause) => this.broken(cause),
    });
  }

  private opened(): void {
    this.state = 'open';
    this.failures = 0;
    if (this.everOpened) this.options.stats.reconnects += 1;
    this.everOpened = true;
    this.flush();
  }

  private broken(error: LinkError): void {
    if (this.state === 'closed') return;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.dropQueue();
    this.options.onError(this.options.peer, error);
    this.options.onUnreachable(this.options.peer);
    this.failures += 1;
    this.state = 'backoff';
    const delayMs = backoffDelayMs(this.failures, this.options.reconnectBackoffMs, this.options.random);
    this.redialTimer = setTimeout(() => this.dial(), delayMs);
    this.redialTimer.unref();
  }

  private flush(): void {
    while (this.state === 'open' && this.writable) {
      const frame = this.queue.shift();
      if (frame === undefined) return;
      this.write(frame);
    }
  }

  private write(frame: OutboundFrame): void {
    const stream = this.stream;
    if (stream === undefined) return;
    this.writable = stream.call.write(frame.bytes);
    this.options.stats.framesSent += 1;
    this.options.stats.messagesSent += frame.messageCount;
  }

  private dropQueue(): void {
    for (const frame of this.queue) {
      this.options.stats.framesDropped += 1;
      this.options.stats.messagesDropped += frame.messageCount;
    }
    this.queue = [];
  }
}
