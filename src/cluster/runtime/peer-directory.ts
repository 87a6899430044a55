// The peers this node talks to: those from the seed and hello answers (formation), overlaid by the
// member list, which knows every node. Each change is published to every channel that dials peers
// (the Raft transport, the forwarding streams, the remote-call clients) in one step.

import type { NodeId } from '../../../raft/index.js';
import { joinHostPort } from '../membership/discovery.js';
import type { Formation } from '../membership/formation.js';
import type { MembershipStateMachine } from '../membership/membership-state-machine.js';
import { faultPeerAddresses, withFaultPeerAddresses } from '../../node/fault-injection.js';

/** Anything that keeps a connection per peer. */
export interface PeerChannel {
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
}

export interface PeerDirectory {
  /** Every peer's Raft (gRPC) address. */
  peers(): Map<NodeId, string>;
  /** Hands the current peers to every channel, if they changed since the last time. */
  publish(): void;
}

export const createPeerDirectory = (options: {
  readonly nodeId: NodeId;
  readonly membership: MembershipStateMachine;
  readonly formation: () => Formation | undefined;
  readonly channels: readonly PeerChannel[];
}): PeerDirectory => {
  const { nodeId, membership } = options;
  const peers = (): Map<NodeId, string> => {
    const all = new Map(options.formation()?.peers() ?? new Map<NodeId, string>());
    for (const member of membership.members()) {
      if (member.nodeId === nodeId) continue;
      // A removed node's Raft traffic is no longer welcome (even if the seed still names it).
      if (member.state === 'removed') all.delete(member.nodeId);
      else all.set(member.nodeId, joinHostPort(member.host, member.raftPort));
    }
    return all;
  };
  let peersKey = '';
  // Test-only (FASTPACA_FAULT_PEER_ADDRESSES, empty unless set): the fault suite's proxies.
  const peerOverrides = faultPeerAddresses();
  const publish = (): void => {
    const current = withFaultPeerAddresses(peers(), peerOverrides);
    const key = JSON.stringify([...current].sort());
    if (key === peersKey) return;
    peersKey = key;
    for (const channel of options.channels) channel.setPeers(current);
  };
  membership.onChange(() => publish());
  return { peers, publish };
};
