// What a benchmark asks a cluster it started: each group's leader and term (the internal status
// endpoint, authenticated by the benchmark's own cluster secret), and one context id per group.
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultGroupCount, groupOf } from '../src/context/routing.js';
import { benchClusterSecret, clusterSecretHeader } from './local-nodes.js';
import { round } from './stats.js';

export interface GroupStatus {
  readonly group: number;
  readonly leader: string | null;
  readonly term: number;
}

export const groupStatuses = async (url: string): Promise<readonly GroupStatus[]> => {
  const response = await fetch(`${url}/internal/v1/cluster/status`, {
    headers: { [clusterSecretHeader]: benchClusterSecret },
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 200) throw new Error(`cluster status of ${url}: HTTP ${response.status}`);
  return ((await response.json()) as { groups: readonly GroupStatus[] }).groups;
};

export const leaderCounts = async (url: string): Promise<Map<string, number>> => {
  const counts = new Map<string, number>();
  for (const { leader } of await groupStatuses(url)) {
    if (leader !== null) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  }
  return counts;
};

/** Waits (bounded) until each of `nodes` leads within ±10 % of an even share; ms taken, if it did. */
export const waitLeadersBalanced = async (
  url: string,
  nodes: number,
  timeoutMs: number,
): Promise<number | undefined> => {
  const startedMs = performance.now();
  const even = defaultGroupCount / nodes;
  while (performance.now() - startedMs < timeoutMs) {
    try {
      const counts = [...(await leaderCounts(url)).values()];
      if (counts.length === nodes && counts.every((count) => Math.abs(count - even) <= 0.1 * even)) {
        return round(performance.now() - startedMs, 0);
      }
    } catch {
      // Not answering yet.
    }
    await sleep(250);
  }
  return undefined;
};

/** One context id per group, so a write to each proves every group has a working leader. */
export const oneContextPerGroup = (prefix: string): string[] => {
  const byGroup = new Map<number, string>();
  for (let i = 0; byGroup.size < defaultGroupCount && i < 1_000_000; i++) {
    const id = `${prefix}-${i}`;
    const group = groupOf(id);
    if (!byGroup.has(group)) byGroup.set(group, id);
  }
  return [...byGroup.values()];
};
