// The caller's side of forwarding: one gRPC client per peer (its own connection, apart from the
// Raft stream), and a classification of every failure by what the caller may conclude from it.
// "unsent" means the leader never received the proposal, so retrying cannot duplicate it;
// "ambiguous" means it may have been proposed, so only the client (with an idempotency key) may retry.

import { Client, credentials, status } from '@grpc/grpc-js';
import type { ServiceError as GrpcError } from '@grpc/grpc-js';

import type { ProposeOutcome } from '../../raft/api.js';
import type { GroupId, NodeId } from '../../raft/core/types.js';
import { secretMetadata } from '../../raft/transport/auth.js';
import { clientOptions, deserializeBytes, serializeBytes } from '../../raft/transport/grpc-service.js';
import type { CommandResult } from '../context/results.js';
import {
  decodeForwardOutcome,
  encodeForwardRequest,
  FORWARD_PROPOSE_PATH,
  ForwardCodecError,
} from './forward-protocol.js';

export type ForwardResult =
  | { readonly kind: 'outcome'; readonly outcome: ProposeOutcome<CommandResult> }
  | { readonly kind: 'unsent'; readonly reason: string }
  | { readonly kind: 'ambiguous'; readonly reason: string };

export interface Forwarder {
  propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult>;
}

export interface ForwardClientsOptions {
  readonly clusterSecret: string | undefined;
  /** Largest request or answer. Default 16 MiB (a command is at most a request body). */
  readonly maxMessageBytes?: number;
}

/** Extra time the caller waits beyond the leader's own proposal timeout, for the answer to travel. */
const answerSlackMs = 1_000;

/** grpc-js failures that happen before a call is sent on a connection. */
const unsentDetails = ['No connection established', 'Channel closed before call started'];

export class ForwardClients implements Forwarder {
  private readonly clients = new Map<NodeId, { readonly address: string; readonly client: Client }>();
  private readonly maxMessageBytes: number;
  private closed = false;

  constructor(private readonly options: ForwardClientsOptions) {
    this.maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
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
        credentials.createInsecure(),
        clientOptions({
          maxFrameBytes: this.maxMessageBytes,
          reconnectBackoffMs: { initial: 100, max: 1_000 },
        }),
      );
      this.clients.set(peer, { address, client });
    }
  }

  propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult> {
    const entry = this.clients.get(peer);
    if (entry === undefined || this.closed) {
      return Promise.resolve({ kind: 'unsent', reason: `no address for ${peer}` });
    }
    const request = encodeForwardRequest({ group, timeoutMs, data });
    return new Promise<ForwardResult>((resolve) => {
      entry.client.makeUnaryRequest<Uint8Array, Uint8Array>(
        FORWARD_PROPOSE_PATH,
        serializeBytes,
        deserializeBytes,
        request,
        secretMetadata(this.options.clusterSecret),
        { deadline: Date.now() + timeoutMs + answerSlackMs },
        (error: GrpcError | null, answer?: Uint8Array) => {
          if (error !== null) {
            resolve(classify(error));
            return;
          }
          if (answer === undefined) {
            resolve({ kind: 'ambiguous', reason: 'empty answer' });
            return;
          }
          try {
            resolve({ kind: 'outcome', outcome: decodeForwardOutcome(answer) });
          } catch (decodeError) {
            const reason = decodeError instanceof ForwardCodecError ? decodeError.message : 'bad answer';
            resolve({ kind: 'ambiguous', reason });
          }
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

const classify = (error: GrpcError): ForwardResult => {
  const details = error.details ?? '';
  // Refused before the leader proposed anything: authentication and decoding come first there.
  if (error.code === status.UNAUTHENTICATED || error.code === status.INVALID_ARGUMENT) {
    return { kind: 'unsent', reason: `${status[error.code]}: ${details}` };
  }
  if (error.code === status.UNAVAILABLE && unsentDetails.some((prefix) => details.includes(prefix))) {
    return { kind: 'unsent', reason: details };
  }
  return { kind: 'ambiguous', reason: `${status[error.code] ?? error.code}: ${details}` };
};
