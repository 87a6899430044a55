// The production Transport: Raft traffic between hosts over gRPC (grpc-js, msgpack frames).
// Each `send` becomes one frame on a long-lived stream to the peer (split only if it would exceed
// frameTargetBytes), because frames, not messages, are what grpc-js pays for. Snapshots travel on a
// separate client-streaming call. Every call carries the cluster secret.

import { Server } from '@grpc/grpc-js';
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { GroupMessage, SnapshotChunk, Transport, TransportHandlers } from '../api.js';
import type { NodeId } from '../core/types.js';
import { createSecretCheck } from '../../net/auth.js';
import type { BackoffMs } from './backoff.js';
import { encodeFrame } from './codec.js';
import {
  PEER_BATCH_BYTES_TARGET,
  PEER_MESSAGE_BYTES_MAX,
  peerServerCredentials,
  serverOptions,
} from '../../net/grpc.js';
import type { PeerTls } from '../../net/grpc.js';
import { transportService } from './grpc-service.js';
import { authenticateFirst, MAX_CONCURRENT_STREAMS } from '../../net/authenticate-first.js';
import { createInboundService } from './inbound.js';
import { PeerLink } from './peer-link.js';
import type { LinkError, OutboundFrame } from './peer-link.js';
import { SnapshotBudget } from './snapshot-assembly.js';
import { sendSnapshotOverGrpc } from './snapshot-sender.js';
import { emptyTransportStats } from './transport-stats.js';
import type { TransportStats } from './transport-stats.js';

export interface GrpcTransportOptions {
  readonly nodeId: NodeId;
  /** Default '127.0.0.1'. */
  readonly listenHost?: string;
  /** 0 (the default) binds an ephemeral port; read it with `port()` after `start`. */
  readonly listenPort?: number;
  /** Shared by every node of the cluster; required unless `insecure` is set. */
  readonly clusterSecret?: string;
  /**
   * Run without a cluster secret, accepting any caller. An open Raft port is a write path into
   * every context, so this must be asked for explicitly (tests, a trusted single-host setup); a
   * forgotten secret must never silently mean "no authentication".
   */
  readonly insecure?: boolean;
  /** Mutual TLS between nodes (net/grpc.ts); plain TCP when absent. */
  readonly tls?: PeerTls | undefined;
  /** Redial delays after a stream breaks. Default { initial: 100, max: 5000 }. */
  readonly reconnectBackoffMs?: BackoffMs;
  /** A dial the peer has not confirmed within this long is abandoned and retried. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * Largest encoded frame or snapshot chunk, sent or received: a single message over it is dropped.
   * Default PEER_MESSAGE_BYTES_MAX (256 MiB), so that one entry as large as any request can travel.
   */
  readonly frameBytesMax?: number;
  /**
   * A batch is cut into frames of at most this many bytes, so one frame never holds up the stream
   * for long; a single message larger than this (up to frameBytesMax) travels in a frame of its own.
   * Default 8 MiB, or frameBytesMax when that is smaller.
   */
  readonly frameTargetBytes?: number;
  /** Frames waiting per peer (while connecting or while the stream is full). Default 256. */
  readonly sendQueueFramesMax?: number;
  /** Snapshot bytes held at once across all incoming transfers. Default 1 GiB. */
  readonly snapshotBytesMax?: number;
  /** Deadline of one outgoing snapshot transfer. Default 10 minutes. */
  readonly snapshotTimeoutMs?: number;
  /** Jitter source, a float in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** A peer's stream broke or a snapshot transfer failed (for logs; the secret is never included). */
  readonly onLinkError?: (peer: NodeId, error: LinkError) => void;
  /**
   * More services on the same server and port (e.g. the cluster's request forwarding), so a node
   * exposes one inter-node port. Each authenticates its own calls (createSecretCheck in auth.ts).
   */
  readonly extraServices?: readonly ExtraGrpcService[];
}

export interface ExtraGrpcService {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

export interface GrpcTransport extends Transport {
  /** The bound port. Throws before `start` resolved. */
  port(): number;
  /** A copy of the counters. */
  stats(): TransportStats;
}

interface ResolvedOptions {
  readonly nodeId: NodeId;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly clusterSecret: string | undefined;
  readonly tls: PeerTls | undefined;
  readonly reconnectBackoffMs: BackoffMs;
  readonly connectTimeoutMs: number;
  readonly frameBytesMax: number;
  readonly frameTargetBytes: number;
  readonly sendQueueFramesMax: number;
  readonly snapshotBytesMax: number;
  readonly snapshotTimeoutMs: number;
  readonly random: () => number;
  readonly onLinkError: (peer: NodeId, error: LinkError) => void;
  readonly extraServices: readonly ExtraGrpcService[];
}

const requirePositive = (name: string, value: number): number => {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`grpc transport: ${name} must be > 0`);
  return value;
};

const resolveOptions = (options: GrpcTransportOptions): ResolvedOptions => {
  if (options.clusterSecret === undefined && options.insecure !== true) {
    throw new Error('grpc transport: a clusterSecret is required (or insecure: true, explicitly)');
  }
  if (options.clusterSecret === '') throw new Error('grpc transport: clusterSecret is empty');
  const backoff = options.reconnectBackoffMs ?? { initial: 100, max: 5_000 };
  requirePositive('reconnectBackoffMs.initial', backoff.initial);
  if (backoff.max < backoff.initial) throw new Error('grpc transport: reconnectBackoffMs.max < initial');
  const listenPort = options.listenPort ?? 0;
  const frameBytesMax = requirePositive('frameBytesMax', options.frameBytesMax ?? PEER_MESSAGE_BYTES_MAX);
  if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65_535) {
    throw new Error('grpc transport: listenPort must be an integer in 0..65535');
  }
  return {
    nodeId: options.nodeId,
    listenHost: options.listenHost ?? '127.0.0.1',
    listenPort,
    clusterSecret: options.clusterSecret,
    tls: options.tls,
    reconnectBackoffMs: backoff,
    connectTimeoutMs: requirePositive('connectTimeoutMs', options.connectTimeoutMs ?? 5_000),
    frameBytesMax,
    frameTargetBytes: Math.min(
      frameBytesMax,
      requirePositive('frameTargetBytes', options.frameTargetBytes ?? PEER_BATCH_BYTES_TARGET),
    ),
    sendQueueFramesMax: requirePositive('sendQueueFramesMax', options.sendQueueFramesMax ?? 256),
    snapshotBytesMax: requirePositive('snapshotBytesMax', options.snapshotBytesMax ?? 1024 ** 3),
    snapshotTimeoutMs: requirePositive('snapshotTimeoutMs', options.snapshotTimeoutMs ?? 10 * 60_000),
    random: options.random ?? Math.random,
    onLinkError: options.onLinkError ?? (() => undefined),
    extraServices: options.extraServices ?? [],
  };
};

/** Throws on invalid options, including a missing secret without `insecure: true`. */
export const createGrpcTransport = (options: GrpcTransportOptions): GrpcTransport =>
  new GrpcTransportImpl(resolveOptions(options));

/** Host part of a listen address, bracketed when it is an IPv6 literal. */
const hostPort = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

class GrpcTransportImpl implements GrpcTransport {
  private readonly options: ResolvedOptions;
  private readonly counters = emptyTransportStats();
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly unreachable = new Set<NodeId>();
  private readonly stopping = new AbortController();
  private server: Server | undefined;
  private boundPort: number | undefined;

  constructor(options: ResolvedOptions) {
    this.options = options;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.server !== undefined || this.stopping.signal.aborted) {
      throw new Error('grpc transport: start called twice, or after stop');
    }
    const checkSecret = createSecretCheck(this.options.clusterSecret);
    const server = new Server({
      ...serverOptions(this.options),
      'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
      interceptors: [
        authenticateFirst(checkSecret, () => {
          this.counters.callsUnauthenticated += 1;
        }),
      ],
    });
    server.addService(
      transportService,
      createInboundService({
        nodeId: this.options.nodeId,
        checkSecret,
        handlers,
        stats: this.counters,
        snapshotBudget: new SnapshotBudget(this.options.snapshotBytesMax),
        onPeerAlive: (peer) => this.links.get(peer)?.peerAlive(),
      }),
    );
    for (const extra of this.options.extraServices) server.addService(extra.definition, extra.implementation);
    this.server = server;
    this.boundPort = await new Promise<number>((resolve, reject) => {
      const address = hostPort(this.options.listenHost, this.options.listenPort);
      server.bindAsync(address, peerServerCredentials(this.options.tls), (error, port) =>
        error === null ? resolve(port) : reject(error),
      );
    });
  }

  port(): number {
    if (this.boundPort === undefined) throw new Error('grpc transport: not started');
    return this.boundPort;
  }

  stats(): TransportStats {
    return { ...this.counters };
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.stopping.signal.aborted) return;
    for (const [peer, link] of this.links) {
      if (peers.get(peer) === link.address) continue;
      link.close();
      this.links.delete(peer);
    }
    for (const [peer, address] of peers) {
      if (peer === this.options.nodeId || this.links.has(peer)) continue;
      this.links.set(peer, this.createLink(peer, address));
    }
  }

  send(to: NodeId, batch: readonly GroupMessage[]): void {
    if (batch.length === 0) return;
    const link = this.links.get(to);
    // Checked before encoding: while a peer is down the host keeps sending every turn.
    if (link === undefined || !link.isUp()) {
      this.drop(to, 1, batch.length);
      return;
    }
    for (const frame of this.encodeFrames(to, batch)) {
      if (!link.send(frame)) this.drop(to, 1, frame.messageCount);
    }
  }

  async sendSnapshot(to: NodeId, chunks: AsyncIterable<SnapshotChunk>): Promise<boolean> {
    const address = this.links.get(to)?.address;
    if (address === undefined) {
      this.counters.snapshotsFailed += 1;
      this.unreachable.add(to);
      return false;
    }
    const result = await sendSnapshotOverGrpc(
      { ...this.options, address, timeoutMs: this.options.snapshotTimeoutMs, signal: this.stopping.signal },
      chunks,
    );
    if (!result.ok) {
      this.counters.snapshotsFailed += 1;
      this.options.onLinkError(to, result.error);
      return false;
    }
    this.counters.snapshotsSent += 1;
    return result.accepted;
  }

  drainUnreachable(): readonly NodeId[] {
    const peers = [...this.unreachable];
    this.unreachable.clear();
    return peers;
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    for (const link of this.links.values()) link.close();
    this.links.clear();
    const server = this.server;
    if (server === undefined) return;
    // tryShutdown's callback fires once the listening socket is closed (the port is free again);
    // forceShutdown then cancels the long-lived inbound streams it would otherwise wait for.
    await new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      server.forceShutdown();
    });
  }

  private createLink(peer: NodeId, address: string): PeerLink {
    return new PeerLink({
      peer,
      address,
      clusterSecret: this.options.clusterSecret,
      tls: this.options.tls,
      frameBytesMax: this.options.frameBytesMax,
      reconnectBackoffMs: this.options.reconnectBackoffMs,
      connectTimeoutMs: this.options.connectTimeoutMs,
      sendQueueFramesMax: this.options.sendQueueFramesMax,
      random: this.options.random,
      stats: this.counters,
      onUnreachable: (unreachablePeer) => this.unreachable.add(unreachablePeer),
      onError: this.options.onLinkError,
    });
  }

  private drop(to: NodeId, frames: number, messages: number): void {
    this.counters.framesDropped += frames;
    this.counters.messagesDropped += messages;
    this.unreachable.add(to);
  }

  /**
   * One frame for the whole batch unless it would exceed frameTargetBytes; then halves, recursively
   * (rare: only under a large replication backlog or with large entries). A single message goes
   * alone in a frame up to frameBytesMax, and is dropped only past that.
   */
  private encodeFrames(to: NodeId, batch: readonly GroupMessage[]): OutboundFrame[] {
    const frames: OutboundFrame[] = [];
    const encode = (part: readonly GroupMessage[]): void => {
      let bytes: Uint8Array;
      try {
        bytes = encodeFrame({ from: this.options.nodeId, to, batch: part });
      } catch {
        // A message msgpack cannot encode is a bug upstream, but send must never throw: drop it.
        this.drop(to, 1, part.length);
        return;
      }
      const fits = part.length === 1 ? this.options.frameBytesMax : this.options.frameTargetBytes;
      if (bytes.byteLength <= fits) frames.push({ bytes, messageCount: part.length });
      else if (part.length === 1) this.drop(to, 1, 1);
      else {
        const middle = Math.ceil(part.length / 2);
        encode(part.slice(0, middle));
        encode(part.slice(middle));
      }
    };
    encode(batch);
    return frames;
  }
}
