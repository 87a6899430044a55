// The caller's side of forwarding: one gRPC client per peer (its own connection, apart from the
// Raft stream), and a classification of every failure by what the caller may conclude from it.
// "unsent" means the leader never received the proposal, so retrying cannot duplicate it;
// "ambiguous" means it may have been proposed, so only the client (with an idempotency key) may retry.

import type { ProposeOutcome, GroupId, NodeId } from '../../../raft/index.js';
import type { CommandResult } from '../../context/results.js';
import {
  decodeForwardOutcome,
  encodeForwardRequest,
  FORWARD_PROPOSE_PATH,
  ForwardCodecError,
} from './forward-protocol.js';
import { UnaryPeerClients } from './unary-peer-clients.js';
import type { UnaryPeerClientsOptions } from './unary-peer-clients.js';

export type ForwardResult =
  | { readonly kind: 'outcome'; readonly outcome: ProposeOutcome<CommandResult> }
  | { readonly kind: 'unsent'; readonly reason: string }
  | { readonly kind: 'ambiguous'; readonly reason: string };

export interface Forwarder {
  propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult>;
}

export type ForwardClientsOptions = UnaryPeerClientsOptions;

/** Extra time the caller waits beyond the leader's own proposal timeout, for the answer to travel. */
const answerSlackMs = 1_000;

/** A unary call per forward. Nodes use StreamForwarder (forward-stream.ts); this is the simple form. */
export class ForwardClients implements Forwarder {
  private readonly clients: UnaryPeerClients;

  constructor(options: ForwardClientsOptions) {
    this.clients = new UnaryPeerClients(options);
  }

  /** Peer gRPC addresses; clients of peers that left or moved are closed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.clients.setPeers(peers);
  }

  async propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult> {
    const request = encodeForwardRequest({ group, timeoutMs, data });
    const result = await this.clients.call(peer, FORWARD_PROPOSE_PATH, request, timeoutMs + answerSlackMs);
    if (result.kind !== 'answer') return result;
    try {
      return { kind: 'outcome', outcome: decodeForwardOutcome(result.bytes) };
    } catch (decodeError) {
      const reason = decodeError instanceof ForwardCodecError ? decodeError.message : 'bad answer';
      return { kind: 'ambiguous', reason };
    }
  }

  close(): void {
    this.clients.close();
  }
}
