// The internal HTTP endpoints nodes use to find each other (and operators or tests to look at a
// node's view of the cluster). They live beside the public API on the HTTP port, because the seed
// names HTTP ports; they need the cluster secret, never an API key.

import type { NodeId } from '../../raft/core/types.js';

export const helloPath = '/internal/v1/cluster/hello';
export const statusPath = '/internal/v1/cluster/status';
export const clusterSecretHeader = 'x-fastpaca-cluster-secret';

export interface HelloAnswer {
  readonly nodeId: NodeId;
  readonly raftPort: number;
}

export const helloBody = (answer: HelloAnswer): string =>
  JSON.stringify({ node_id: answer.nodeId, raft_port: answer.raftPort });

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** Throws unless `text` is a well-formed hello answer. */
export const parseHello = (text: string): HelloAnswer => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('answered hello with something that is not JSON');
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const { node_id: nodeId, raft_port: raftPort } = record;
  if (typeof nodeId !== 'string' || !nodeIdPattern.test(nodeId))
    throw new Error('hello without a valid node_id');
  if (typeof raftPort !== 'number' || !Number.isInteger(raftPort) || raftPort < 1 || raftPort > 65_535) {
    throw new Error('hello without a valid raft_port');
  }
  return { nodeId, raftPort };
};

/** One group as a node sees it (GET statusPath). */
export interface GroupView {
  readonly group: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly leader: NodeId | null;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
}

export interface ClusterStatus {
  readonly node_id: NodeId;
  readonly joined: boolean;
  readonly members: readonly { readonly node_id: NodeId; readonly raft_address: string }[];
  readonly groups: readonly GroupView[];
}
