// A node shutting down gracefully hands every group it leads to another voter first, so its clients'
// groups keep a leader and nobody waits out an election timeout after it exits. Unlike the leader
// balancer, which hands a group to its preferred leader, the handoff takes the most caught-up voter
// the leader hears from; it repeats until this node leads nothing (a transfer can time out, or this
// node can win an election meanwhile) or its deadline passes.

import { setTimeout as sleep } from 'node:timers/promises';

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';

export type HandoffHost = Pick<ConsensusHost, 'groups' | 'status' | 'transferLeader'>;

export interface HandoffResult {
  /** Groups this node still led at the end (a group with no other voter cannot be handed over). */
  readonly stillLed: readonly GroupId[];
  readonly elapsedMs: number;
}

/** The voter to hand `group` to: heard from lately, replicating, the furthest along; or none. */
export const handoffTarget = (host: HandoffHost, group: GroupId, self: NodeId): NodeId | undefined => {
  const status = host.status(group);
  if (status?.role !== 'leader') return undefined;
  let best: { node: NodeId; match: number } | undefined;
  for (const voter of status.conf.voters) {
    if (voter === self) continue;
    const progress = status.progress?.[voter];
    if (progress === undefined || !progress.recentActive || progress.state !== 'replicate') continue;
    if (best === undefined || progress.match > best.match) best = { node: voter, match: progress.match };
  }
  return best?.node;
};

/** The groups this node leads now. */
export const groupsLed = (host: HandoffHost): GroupId[] =>
  host.groups().filter((group) => host.status(group)?.role === 'leader');

/**
 * Transfers leadership of every group this node leads, rechecking every `pollMs`, until it leads
 * none or `budgetMs` has passed. A group with no eligible voter (alone, or its peers down) stays.
 */
export const handOffLeadership = async (
  host: HandoffHost,
  self: NodeId,
  budgetMs: number,
  pollMs = 50,
): Promise<HandoffResult> => {
  const started = Date.now();
  for (;;) {
    const led = groupsLed(host);
    const movable = led.filter((group) => handoffTarget(host, group, self) !== undefined);
    const elapsedMs = Date.now() - started;
    if (movable.length === 0 || elapsedMs >= budgetMs) return { stillLed: led, elapsedMs };
    for (const group of movable) {
      const status = host.status(group);
      const target = handoffTarget(host, group, self);
      // A transfer in flight is left to finish (or to time out after an election timeout).
      if (target !== undefined && status?.leadTransferee === null) host.transferLeader(group, target);
    }
    await sleep(Math.min(pollMs, Math.max(1, budgetMs - elapsedMs)));
  }
};
