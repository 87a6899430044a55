// The caller's side of remote service calls: a unary call per operation (unary-peer-clients.ts),
// its answer decoded, or why there is none (peer-call.ts): only a read may be tried elsewhere after
// an ambiguous failure.

import type { NodeId } from '../../../raft/index.js';
import type { PeerCallFailure } from './peer-call.js';
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
  { readonly kind: 'answer'; readonly answer: ServiceCallAnswer } | PeerCallFailure;

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
