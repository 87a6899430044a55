// Peers that said they are shutting down. A node handing its groups away (leadership-handoff.ts)
// tells its peers first, because their leader balancers would otherwise hand the groups straight
// back to it (it is still up, caught up, and often their preferred leader). The mark expires after
// the time the peer said its shutdown may take; a node that starts again clears it at once.

import type { NodeId } from '../../../raft/index.js';
import { drainingPath } from '../membership/internal-protocol.js';
import { callPeer } from '../membership/peer-http.js';
import type { PeerAuth } from '../membership/peer-http.js';

/** A peer's own word about how long it drains is capped here: a mark never outlives ten minutes. */
export const drainingTtlMaxMs = 600_000;

export interface DrainingPeers {
  /** `node` drains for at most `ttlMs` from now (0 clears the mark). */
  mark(node: NodeId, ttlMs: number): void;
  isDraining(node: NodeId): boolean;
}

export const createDrainingPeers = (now: () => number = Date.now): DrainingPeers => {
  const until = new Map<NodeId, number>();
  return {
    mark: (node, ttlMs) => {
      if (ttlMs <= 0) until.delete(node);
      else until.set(node, now() + Math.min(ttlMs, drainingTtlMaxMs));
    },
    isDraining: (node) => {
      const end = until.get(node);
      if (end === undefined) return false;
      if (end > now()) return true;
      until.delete(node);
      return false;
    },
  };
};

/**
 * Tells every peer (HTTP addresses host:port) that `self` drains for `ttlMs`; best effort, each
 * request bounded by `timeoutMs`. Resolves with the addresses that acknowledged.
 */
export const announceDraining = async (
  options: PeerAuth & {
    readonly self: NodeId;
    readonly ttlMs: number;
    readonly peerHttpAddresses: readonly string[];
    readonly timeoutMs: number;
  },
): Promise<string[]> => {
  const query = new URLSearchParams({ node_id: options.self, ttl_ms: String(options.ttlMs) });
  const answers = await Promise.allSettled(
    options.peerHttpAddresses.map(async (address) => {
      const response = await callPeer(options, address, `${drainingPath}?${query.toString()}`, {
        method: 'POST',
        timeoutMs: options.timeoutMs,
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
      return address;
    }),
  );
  return answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
};
