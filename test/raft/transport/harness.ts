// Shared set-up for the transport's network tests: transports on 127.0.0.1 ephemeral ports that
// record what they receive, bounded polling, and one cleanup that stops every transport started.

import type { GroupMessage, TransportHandlers } from '../../../raft/api.js';
import type { GroupId, Message, NodeId } from '../../../raft/core/types.js';
import { MessageType } from '../../../raft/core/types.js';
import { createGrpcTransport } from '../../../raft/transport/grpc-transport.js';
import type { GrpcTransport, GrpcTransportOptions } from '../../../raft/transport/grpc-transport.js';
import type { LinkError } from '../../../raft/transport/peer-link.js';

export const SECRET = 'test-cluster-secret';

export interface ReceivedSnapshot {
  readonly from: NodeId;
  readonly group: GroupId;
  readonly message: Message;
  readonly pairs: readonly (readonly [Uint8Array, Uint8Array])[];
}

export interface Node {
  readonly id: NodeId;
  readonly transport: GrpcTransport;
  readonly address: string;
  /** Every batch received, with its sender, in arrival order. */
  readonly received: { readonly from: NodeId; readonly batch: readonly GroupMessage[] }[];
  readonly snapshots: ReceivedSnapshot[];
  readonly linkErrors: { readonly peer: NodeId; readonly error: LinkError }[];
  /** What onSnapshot answers. */
  snapshotAnswer: boolean;
}

export type NodeOptions = Omit<GrpcTransportOptions, 'nodeId' | 'onLinkError'>;

/** Starts transports and stops them all in `stopAll` (call it from afterEach). */
export class Cluster {
  private readonly started: GrpcTransport[] = [];

  async start(id: NodeId, options: NodeOptions = { clusterSecret: SECRET }): Promise<Node> {
    const linkErrors: Node['linkErrors'] = [];
    const transport = createGrpcTransport({
      nodeId: id,
      reconnectBackoffMs: { initial: 20, max: 200 },
      ...options,
      onLinkError: (peer, error) => linkErrors.push({ peer, error }),
    });
    this.started.push(transport);
    // The handlers close over `state`, which becomes the Node (Object.assign returns its target),
    // so a test flipping `snapshotAnswer` changes what the running transport answers.
    const state: Pick<Node, 'received' | 'snapshots' | 'linkErrors' | 'snapshotAnswer'> = {
      received: [],
      snapshots: [],
      linkErrors,
      snapshotAnswer: true,
    };
    const handlers: TransportHandlers = {
      onMessages: (from, batch) => state.received.push({ from, batch }),
      onSnapshot: async (from, group, message, pairs) => {
        state.snapshots.push({ from, group, message, pairs });
        return state.snapshotAnswer;
      },
    };
    await transport.start(handlers);
    return Object.assign(state, { id, transport, address: `127.0.0.1:${transport.port()}` });
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((transport) => transport.stop()));
  }
}

/** Tell each node where the others are. */
export const connect = (...nodes: readonly Node[]): void => {
  const peers = new Map(nodes.map((node) => [node.id, node.address]));
  for (const node of nodes) node.transport.setPeers(peers);
};

/** Polls `condition` every 10 ms; fails the test after `timeoutMs`. */
export const waitFor = async (what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/** Sends `batch` every 20 ms until `condition` holds (a link may still be dialing); bounded. */
export const sendUntil = async (
  what: string,
  send: () => void,
  condition: () => boolean,
  timeoutMs = 10_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    send();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

export const heartbeat = (from: NodeId, to: NodeId, group: GroupId, commit = 1): GroupMessage => ({
  group,
  message: { type: MessageType.Heartbeat, from, to, term: 1, commit, context: 0 },
});

export const messagesOf = (node: Node): GroupMessage[] => node.received.flatMap((entry) => [...entry.batch]);
