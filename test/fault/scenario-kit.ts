// What the fault scenarios share: durations (short in `npm test`, minutes under `npm run soak`),
// starting a proxied cluster, per-group terms and leaders, time to writable, and the final check.

import { expect } from 'vitest';

import {
  call,
  clusterStatus,
  createContexts,
  eventually,
  exportMessages,
  leaderCounts,
  waitLeadersSettled,
  waitReady,
} from '../cluster/cluster-harness.js';
import { preferredLeader } from '../../src/cluster/placement/placement.js';
import { checkHistory, summarize, type CheckReport, type FinalMessage } from './checker.js';
import { createFaultCluster, productionRaftEnv, type FaultCluster, type FaultNode } from './processes.js';
import { isAck, type HistoryEvent, type Recorder } from './recorder.js';

/** FASTPACA_SOAK=1: every fault lasts FASTPACA_SOAK_FAULT_MS (default two minutes). */
export const soak = process.env['FASTPACA_SOAK'] === '1';
const soakFaultMs = Number(process.env['FASTPACA_SOAK_FAULT_MS'] ?? 120_000);

/** How long a fault lasts: `shortMs` in the default run, minutes in a soak. */
export const faultMs = (shortMs: number): number => (soak ? Math.max(shortMs, soakFaultMs) : shortMs);

/** A vitest timeout for a test holding `faults` faults of faultMs(shortMs) each plus `slackMs`. */
export const budgetMs = (shortMs: number, faults: number, slackMs: number): number =>
  faultMs(shortMs) * faults + slackMs;

export const startFaultCluster = async (
  extraEnv: Readonly<Record<string, string>> = {},
  proxied = true,
): Promise<FaultCluster> => {
  const cluster = await createFaultCluster(3, { ...productionRaftEnv, ...extraEnv }, proxied);
  for (const node of cluster.nodes) node.start();
  await waitReady(cluster.nodes, 60_000);
  await waitLeadersSettled(cluster.nodes, 45_000);
  return cluster;
};

export interface GroupState {
  readonly term: number;
  readonly leader: string | null;
}

/** Per group: term and leader as `node` sees them. */
export const groupStates = async (node: FaultNode): Promise<Map<number, GroupState>> => {
  const status = await clusterStatus(node);
  return new Map(status.groups.map((group) => [group.group, { term: group.term, leader: group.leader }]));
};

/**
 * Waits until every node sees every group led by its preferred leader. startFaultCluster stops
 * waiting once leadership is within 10 % of even, and the leader balancer then still moves up to a
 * tenth of the groups (each transfer a new term): a scenario that counts terms starts after it.
 */
export const waitLeadersPreferred = async (nodes: readonly FaultNode[], timeoutMs: number): Promise<void> => {
  await eventually('every group led by its preferred leader', timeoutMs, async () => {
    const statuses = await Promise.all(nodes.map((node) => clusterStatus(node)));
    return statuses.every(
      (status) =>
        status.groups.length > 0 &&
        status.groups.every((group) => group.leader === preferredLeader(group.group, group.voters)),
    );
  });
};

/** Total of per-group term increases from `before` to `after`, and the largest single one. */
export const termGrowth = (
  before: ReadonlyMap<number, GroupState>,
  after: ReadonlyMap<number, GroupState>,
): { total: number; max: number; groups: number } => {
  let total = 0;
  let max = 0;
  let groups = 0;
  for (const [group, state] of after) {
    const growth = state.term - (before.get(group)?.term ?? state.term);
    total += growth;
    max = Math.max(max, growth);
    if (growth > 0) groups += 1;
  }
  return { total, max, groups };
};

/** The node leading the most groups (index into nodes). */
export const busiestLeader = async (nodes: readonly FaultNode[]): Promise<number> => {
  const counts = leaderCounts(await clusterStatus(nodes[0] as FaultNode));
  let best = 0;
  for (const [i, node] of nodes.entries()) {
    if ((counts.get(node.name) ?? 0) > (counts.get(nodes[best]?.name ?? '') ?? 0)) best = i;
  }
  return best;
};

/**
 * Per context, ms from `since` to the first acknowledged append that started at or after `since`
 * (undefined: none yet). The worst over contexts is the time to writable.
 */
export const timeToWritable = (
  history: readonly HistoryEvent[],
  contexts: readonly string[],
  since: number,
): { worstMs: number | undefined; pending: string[] } => {
  let worst = 0;
  const pending: string[] = [];
  for (const context of contexts) {
    const first = history
      .filter((event) => event.op.context === context && isAck(event) && event.start >= since)
      .reduce((min, event) => Math.min(min, event.end), Infinity);
    if (first === Infinity) pending.push(context);
    else worst = Math.max(worst, first - since);
  }
  return { worstMs: pending.length > 0 ? undefined : Math.round(worst), pending };
};

export const waitWritable = async (
  recorder: Recorder,
  contexts: readonly string[],
  since: number,
  timeoutMs: number,
): Promise<number> => {
  await eventually('every context writable', timeoutMs, () =>
    Promise.resolve(timeToWritable(recorder.history(), contexts, since).worstMs !== undefined),
  );
  return timeToWritable(recorder.history(), contexts, since).worstMs ?? -1;
};

/** Waits (bounded) until every node holds the same history of every context, then checks. */
export const finalCheck = async (
  nodes: readonly FaultNode[],
  contexts: readonly string[],
  recorder: Recorder,
): Promise<CheckReport> => {
  const finals = new Map<string, Map<string, readonly FinalMessage[]>>();
  await eventually('every replica holds the same histories', 30_000, async () => {
    for (const node of nodes) {
      const states = new Map<string, readonly FinalMessage[]>();
      for (const context of contexts) states.set(context, await exportMessages(node, context));
      finals.set(node.name, states);
    }
    const keys = [...finals.values()].map((states) => JSON.stringify([...states]));
    return keys.every((key) => key === keys[0]);
  }).catch(() => undefined); // A divergence is reported by the checker below, with details.
  const report = checkHistory(recorder.history(), finals);
  console.log(summarize(report));
  expect(report.violations, summarize(report)).toEqual([]);
  return report;
};

export const setUpContexts = async (
  nodes: readonly FaultNode[],
  count: number,
  prefix: string,
): Promise<string[]> => {
  const contexts = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  await createContexts(nodes, contexts);
  return contexts;
};

/** Each node answers a linearizable read of `context` (its leader elected, quorum reachable). */
export const allServe = async (nodes: readonly FaultNode[], context: string): Promise<boolean> => {
  for (const node of nodes) {
    const answer = await call(node, 'GET', `/v1/contexts/${context}`, undefined, 3_000);
    if (answer.status !== 200) return false;
  }
  return true;
};
