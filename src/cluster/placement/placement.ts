// Where each Raft group lives and which of its replicas should lead it. Pure and deterministic:
// every node computes the same answer from the same member list, so nodes that formed the cluster
// independently bootstrap every group with the same voters and agree on preferred leaders.

import { createHash } from 'node:crypto';

import type { GroupId, NodeId } from '../../../raft/index.js';

/** Replicas per group (all members when there are fewer). */
export const replicationFactor = 3;

/** Rendezvous (highest random weight) score of `node` for `group`: stable, independent per pair. */
const score = (group: GroupId, node: NodeId): bigint =>
  createHash('sha256').update(`${group}\u0000${node}`).digest().readBigUInt64BE(0);

/**
 * The voters of `group`: all members when there are at most `replicationFactor`, otherwise the
 * `replicationFactor` members with the highest rendezvous score, so adding or removing one member
 * moves only the groups it wins or held. Always sorted by node id.
 */
export const votersFor = (
  group: GroupId,
  members: readonly NodeId[],
  factor: number = replicationFactor,
): NodeId[] => {
  const unique = [...new Set(members)].sort();
  if (unique.length <= factor) return unique;
  return unique
    .map((node) => ({ node, weight: score(group, node) }))
    .sort((a, b) => (a.weight === b.weight ? (a.node < b.node ? -1 : 1) : a.weight > b.weight ? -1 : 1))
    .slice(0, factor)
    .map((entry) => entry.node)
    .sort();
};

/**
 * The replica that should lead `group`: the sorted voters taken round-robin by group id, so with
 * three nodes each leads a third of the groups (86/85/85 of 256).
 */
export const preferredLeader = (group: GroupId, voters: readonly NodeId[]): NodeId | undefined => {
  const sorted = [...voters].sort();
  return sorted[group % sorted.length];
};
