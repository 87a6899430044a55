// Unary gRPC calls to peers: one client per peer (its own connection, apart from the Raft and
// forwarding streams, so a large answer never delays a heartbeat), kept in step with the peer list,
// and every failure classified by what the caller may conclude (peer-call.ts).

import { Client, status } from '@grpc/grpc-js';
import type { ServiceError as GrpcError } from '@grpc/grpc-js';

import type { NodeId } from '../../../raft/index.js';
import { secretMetadata } from '../../../net/auth.js';
import {
  clientOptions,
  deserializeBytes,
  PEER_MESSAGE_BYTES_MAX,
  peerChannelCredentials,
  serializeBytes,
} from '../../../net/grpc.js';
import type { PeerTls } from '../../../net/grpc.js';
import type { PeerCallFailure } from './peer-call.js';

export type UnaryResult = { readonly kind: 'answer'; readonly bytes: Uint8Array } | PeerCallFailure;

export interface UnaryPeerClientsOptions {
  readonly clusterSecret: string | undefined;
  /** Mutual TLS between nodes (net/grpc.ts); plain TCP when absent. */
  readonly tls?: PeerTls | undefined;
  /** Largest request or answer. Default PEER_MESSAGE_BYTES_MAX (a page of large messages fits). */
  readonly messageBytesMax?: number;
}

/** grpc-js failures that happen before a call is sent on a connection. */
const unsentDetails = ['No connection established', 'Channel closed before call started'];

export class UnaryPeerClients {
  private readonly clients = new Map<NodeId, { readonly address: string; readonly client: Client }>();
  private readonly messageBytesMax: number;
  private closed = false;

  constructor(private readonly options: UnaryPeerClientsOptions) {
    this.messageBytesMax = options.messageBytesMax ?? PEER_MESSAGE_BYTES_MAX;
  }

  /** Peer gRPC addresses; clients of peers that left or moved are closed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closed) return;
    for (const [peer, entry] of this.clients) {
      if (peers.get(peer) === entry.address) continue;
      entry.client.close();
      this.clients.delete(peer);
    }
    for (const [peer, address] of peers) {
      if (this.clients.has(peer)) continue;
      const client = new Client(
        address,
        peerChannelCredentials(this.options.tls),
        clientOptions({
          frameBytesMax: this.messageBytesMax,
          reconnectBackoffMs: { initial: 100, max: 1_000 },
        }),
      );
      this.clients.set(peer, { address, client });
    }
  }

  /** Calls `path` on `peer` with the cluster secret; gives up `timeoutMs` from now. */
  call(peer: NodeId, path: string, request: Uint8Array, timeoutMs: number): Promise<UnaryResult> {
    const entry = this.clients.get(peer);
    if (entry === undefined || this.closed) {
      return Promise.resolve({ kind: 'unsent', reason: `no address for ${peer}` });
    }
    return new Promise<UnaryResult>((resolve) => {
      entry.client.makeUnaryRequest<Uint8Array, Uint8Array>(
        path,
        serializeBytes,
        deserializeBytes,
        request,
        secretMetadata(this.options.clusterSecret),
        { deadline: Date.now() + timeoutMs },
        (error: GrpcError | null, answer?: Uint8Array) => {
          if (error !== null) resolve(classify(error));
          else if (answer === undefined) resolve({ kind: 'ambiguous', reason: 'empty answer' });
          else resolve({ kind: 'answer', bytes: answer });
        },
      );
    });
  }

  close(): void {
    this.closed = true;
    for (const { client } of this.clients.values()) client.close();
    this.clients.clear();
  }
}

const classify = (error: GrpcError): UnaryResult => {
  const details = error.details ?? '';
  // Refused before the peer ran anything: authentication and decoding come first there.
  if (error.code === status.UNAUTHENTICATED || error.code === status.INVALID_ARGUMENT) {
    return { kind: 'unsent', reason: `${status[error.code]}: ${details}` };
  }
  if (error.code === status.UNAVAILABLE && unsentDetails.some((prefix) => details.includes(prefix))) {
    return { kind: 'unsent', reason: details };
  }
  return { kind: 'ambiguous', reason: `${status[error.code] ?? error.code}: ${details}` };
};
