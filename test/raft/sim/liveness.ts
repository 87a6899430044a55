// The liveness phase: heal every link, restart every node, stop all faults and delays, then drive the
// cluster round by round (one tick per node each). Within a bounded number of rounds every group must
// have one leader that all its replicas follow, and every replica must hold the whole applied sequence,
// acknowledged proposals included.

import type { GroupStatus } from '../../../raft/api.js';
import type { GroupId, NodeId } from '../../../raft/core/types.js';
import type { SafetyChecker } from './checkers.js';
import type { SimCluster } from './cluster.js';
import type { AppliedRecord } from './recording-state-machine.js';
import type { SimClock } from './sim-clock.js';
import type { SimConfig } from './sim-config.js';
import type { SimNetwork } from './sim-network.js';
import { settle } from './settle.js';

/** Rounds between convergence checks (a check reads every replica's records back from its store). */
const CHECK_EVERY_ROUNDS = 5;
/** Passes of "fsync, deliver, turn" per round; each pass handles everything pending at its start. */
const DRAIN_PASSES_MAX = 50;

export interface LivenessOutcome {
  readonly converged: boolean;
  readonly rounds: number;
}

export const runLiveness = async (
  config: SimConfig,
  cluster: SimCluster,
  network: SimNetwork,
  clock: SimClock,
  checker: SafetyChecker,
  afterRound: (round: number) => void = () => undefined,
): Promise<LivenessOutcome> => {
  network.heal();
  network.setDelays({ delayMsMin: 0, delayMsMax: 0 });
  network.expediteAll();
  for (const node of cluster.nodes) if (node.state === 'down') cluster.boot(node);
  let gaps: string[] = ['not checked yet'];
  for (let round = 1; round <= config.livenessRoundsMax; round += 1) {
    await drain(cluster, network);
    clock.advance(config.tickMs);
    for (const node of cluster.upNodes()) cluster.tick(node);
    await cluster.observe();
    afterRound(round);
    if (checker.violations.length > 0) return { converged: false, rounds: round };
    if (round % CHECK_EVERY_ROUNDS !== 0) continue;
    gaps = await convergenceGaps(cluster, checker);
    if (gaps.length === 0) {
      checker.checkAcknowledgedApplied();
      return { converged: true, rounds: round };
    }
  }
  checker.fail(
    'liveness',
    `not converged after ${config.livenessRoundsMax} rounds: ${gaps.slice(0, 6).join('; ')}\n${describeGroups(cluster)}`,
  );
  return { converged: false, rounds: config.livenessRoundsMax };
};

/** Complete every fsync, deliver every frame and run every turn, until nothing is left to do. */
const drain = async (cluster: SimCluster, network: SimNetwork): Promise<void> => {
  for (let pass = 0; pass < DRAIN_PASSES_MAX; pass += 1) {
    let progressed = false;
    for (const node of cluster.nodes) {
      if (node.disk.pendingWriteCount === 0) continue;
      node.disk.completeAllFsyncs();
      progressed = true;
    }
    for (const frame of network.deliverable()) {
      network.deliver(frame.id);
      progressed = true;
    }
    for (const node of cluster.upNodes()) {
      if (node.turning || node.host?.hasWork() !== true) continue;
      cluster.startTurn(node);
      progressed = true;
    }
    await settle();
    if (!progressed) return;
  }
};

const convergenceGaps = async (cluster: SimCluster, checker: SafetyChecker): Promise<string[]> => {
  const down = cluster.nodes.filter((node) => node.state !== 'up').map((node) => node.id);
  if (down.length > 0) return [`not up yet: ${down.join(', ')}`];
  const records = new Map<GroupId, ReadonlyMap<NodeId, readonly AppliedRecord[]>>();
  for (const { group } of cluster.placements) {
    const held = await cluster.recordsOf(group);
    // Read back from the stores: their contents, not just what apply reported, must match.
    for (const [node, nodeRecords] of held) checker.observeLoaded(node, group, nodeRecords);
    records.set(group, held);
  }
  const statusesOf = (group: GroupId): GroupStatus[] =>
    cluster.membersOf(group).flatMap((id) => {
      const status = cluster.node(id).host?.status(group);
      return status === undefined ? [] : [status];
    });
  return checker.convergenceGaps(
    cluster.placements.map(({ group }) => group),
    statusesOf,
    (group) => records.get(group) ?? new Map(),
  );
};

/** Every replica's view of every group, for the report of a cluster that did not converge. */
const describeGroups = (cluster: SimCluster): string =>
  cluster.placements
    .flatMap(({ group }) =>
      cluster.membersOf(group).map((id) => {
        const status = cluster.node(id).host?.status(group);
        if (status === undefined) return `  g${group} ${id}: ${cluster.node(id).state}`;
        const progress = Object.entries(status.progress ?? {})
          .map(([peer, p]) => `${peer}:${p.state}/${p.match}/${p.next}${p.recentActive ? '' : '(inactive)'}`)
          .join(' ');
        return (
          `  g${group} ${id}: ${status.role} term ${status.term} leader ${status.leader ?? '-'} commit ${status.commit} ` +
          `applied ${status.applied} log [${status.firstIndex}, ${status.lastIndex}]${progress === '' ? '' : ` progress ${progress}`}`
        );
      }),
    )
    .join('\n');
