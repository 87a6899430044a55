// The caller's side of remote service calls: one gRPC client per peer (its own connection, apart
// from the Raft and forwarding streams, so a large read answer never delays a heartbeat), and each
// failure classified by what the caller may conclude: "unsent" means the peer never ran the
// operation; "ambiguous" means it may have (only a read may then be tried elsewhere).

import type { NodeId } from '../../../raft/index.js';
import type { ServiceCallAnswer, ServiceCallRequest } from './remote-call-protocol.js';
import {
  decodeServiceAnswer,
  encodeServiceCall,
  SERVICE_CALL_PATH,
  ServiceCallCodecError,
} from './remote-call-protocol.js';
import { UnaryPeerClients } from './unary-peer-clients.js';
import type { UnaryPeerClientsOptions } from './unary-peer-clients.js';

export type ServiceCallResult =
  | { readonly kind: 'answer'; readonly answer: ServiceCallAnswer }
  | { readonly kind: 'unsent'; readonly reason: string }
  | { readonly kind: 'ambiguous'; readonly reason: string };

export interface RemoteCaller {
  call(peer: NodeId, request: ServiceCallRequest, timeoutMs: number): Promise<ServiceCallResult>;
}

export type RemoteCallClientsOptions = UnaryPeerClientsOptions;

export class RemoteCallClients implements RemoteCaller {
  private readonly clients: UnaryPeerClients;

  constructor(options: RemoteCallClientsOptions) {
    this.clients = new UnaryPeerClients(options);
  }

  /** Peer gRPC addresses; clients of peers that left or moved are closed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.clients.setPeers(peers);
  }

  async call(peer: NodeId, request: ServiceCallRequest, timeoutMs: number): Promise<ServiceCallResult> {
    const result = await this.clients.call(peer, SERVICE_CALL_PATH, encodeServiceCall(request), timeoutMs);
    if (result.kind !== 'answer') return result;
    try {
      return { kind: 'answer', answer: decodeServiceAnswer(result.bytes) };
    } catch (decodeError) {
      const reason = decodeError instanceof ServiceCallCodecError ? decodeError.message : 'bad answer';
      return { kind: 'ambiguous', reason };
    }
  }

  close(): void {
    this.clients.close();
  }
}
