// The internal HTTP endpoints nodes use to find each other (and operators or tests to look at a
// node's view of the cluster). They live beside the public API on the HTTP port, because the seed
// names HTTP ports; they need the cluster secret, never an API key.

import type { NodeId } from '../../../raft/index.js';
import { incarnationPattern } from '../../config/node-name.js';

export const helloPath = '/internal/v1/cluster/hello';
export const statusPath = '/internal/v1/cluster/status';
/**
 * POST ?node_id=&raft_port=&http_port=&incarnation=[&host=]: add the caller to the member list
 * (idempotent for the same incarnation; see membership.ts).
 */
export const joinPath = '/internal/v1/cluster/join';
/** POST ?node_id=: start draining a node (its replicas move away). */
export const leavePath = '/internal/v1/cluster/leave';
/** POST ?node_id=: drop a drained node from the member list. */
export const forgetPath = '/internal/v1/cluster/forget';
/**
 * POST ?node_id=&ttl_ms=: the caller is shutting down for up to ttl_ms (0: it is back); leader
 * balancers hand it no group meanwhile (placement/draining-peers.ts).
 */
export const drainingPath = '/internal/v1/cluster/draining';
/**
 * GET ?node_id=: for every group the answering node leads, the highest log index node_id acknowledged
 * as durable there (the leader's `match`) and the leader's term; and for every group it holds, its
 * term (`terms`, the vote fences) and the newest entry it knows committed (`commits`, the log
 * fences). See acknowledged-entries.ts.
 */
export const acknowledgedPath = '/internal/v1/cluster/acknowledged';
export const clusterSecretHeader = 'x-fastpaca-cluster-secret';

export const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** A member as the internal endpoints show it. */
export interface MemberView {
  readonly node_id: NodeId;
  readonly host: string;
  readonly http_port: number;
  readonly raft_port: number;
  readonly state: 'active' | 'leaving' | 'removed';
  /** Its data directory's incarnation, once the member list has recorded one. */
  readonly incarnation?: string;
  /** The highest generation that incarnation's data directory reported (generation.ts). */
  readonly generation?: number;
}

export interface HelloAnswer {
  readonly nodeId: NodeId;
  readonly raftPort: number;
  /** True once the node belongs to a formed cluster: a fresh node then joins instead of forming. */
  readonly joined: boolean;
  /** The member list as this node last applied it (empty before it is known). */
  readonly members: readonly MemberView[];
  /**
   * The ids this node formed the cluster with, if it bootstrapped in this run: a node named there
   * that starts late bootstraps the same groups instead of asking to join.
   */
  readonly formedWith?: readonly NodeId[];
  /**
   * Before joining: every node id this node knows (itself included, sorted). Nodes form a cluster
   * only once all of them report the same set (formation.ts), so two never form different ones.
   */
  readonly known?: readonly NodeId[];
}

export const helloBody = (answer: HelloAnswer): string =>
  JSON.stringify({
    node_id: answer.nodeId,
    raft_port: answer.raftPort,
    joined: answer.joined,
    members: answer.members,
    ...(answer.formedWith === undefined ? {} : { formed_with: answer.formedWith }),
    ...(answer.known === undefined ? {} : { known: answer.known }),
  });

const isPort = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65_535;

/** The well-formed members of a hello answer (others are skipped: a member list is advisory here). */
const parseMembers = (value: unknown): MemberView[] => {
  if (!Array.isArray(value)) return [];
  const members: MemberView[] = [];
  for (const entry of value as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const {
      node_id: nodeId,
      host,
      http_port: httpPort,
      raft_port: raftPort,
      state,
      incarnation,
      generation,
    } = entry as Record<string, unknown>;
    if (typeof nodeId !== 'string' || !nodeIdPattern.test(nodeId)) continue;
    if (typeof host !== 'string' || host.length === 0 || !isPort(httpPort) || !isPort(raftPort)) continue;
    if (state !== 'active' && state !== 'leaving' && state !== 'removed') continue;
    const member: MemberView = { node_id: nodeId, host, http_port: httpPort, raft_port: raftPort, state };
    const withIncarnation =
      typeof incarnation === 'string' && incarnationPattern.test(incarnation)
        ? { ...member, incarnation }
        : member;
    members.push(
      typeof generation === 'number' && Number.isSafeInteger(generation) && generation >= 0
        ? { ...withIncarnation, generation }
        : withIncarnation,
    );
  }
  return members;
};

const isIdList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((id: unknown) => typeof id === 'string' && nodeIdPattern.test(id));

/** Throws unless `text` is a well-formed hello answer. */
export const parseHello = (text: string): HelloAnswer => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('answered hello with something that is not JSON');
  }
  const record = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const { node_id: nodeId, raft_port: raftPort, joined, members, formed_with: formedWith, known } = record;
  if (typeof nodeId !== 'string' || !nodeIdPattern.test(nodeId))
    throw new Error('hello without a valid node_id');
  if (typeof raftPort !== 'number' || !Number.isInteger(raftPort) || raftPort < 1 || raftPort > 65_535) {
    throw new Error('hello without a valid raft_port');
  }
  const formed = isIdList(formedWith) ? { formedWith } : {};
  const knownIds = isIdList(known) ? { known } : {};
  return {
    nodeId,
    raftPort,
    joined: joined === true,
    members: parseMembers(members),
    ...formed,
    ...knownIds,
  };
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

export interface StatusMember {
  readonly node_id: NodeId;
  readonly raft_address: string;
  /** From the member list; absent for a peer only the seed knows of so far. */
  readonly http_address?: string;
  readonly state?: 'active' | 'leaving' | 'removed';
  /** Its data directory's incarnation, once the member list has recorded one. */
  readonly incarnation?: string;
  /** The highest generation that incarnation's data directory reported (generation.ts). */
  readonly generation?: number;
}

export interface ClusterStatus {
  readonly node_id: NodeId;
  readonly joined: boolean;
  readonly members: readonly StatusMember[];
  /** The data groups this node hosts. */
  readonly groups: readonly GroupView[];
  /** The meta group (membership), if this node hosts a replica of it. */
  readonly meta?: GroupView;
}
