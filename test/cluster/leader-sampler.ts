// Samples every running node's view of every group's (term, leader) throughout a test, to find two
// leaders in one term (the stale-copy tests: a copy with forgotten votes could elect one).

import { clusterStatus, sleep } from './cluster-harness.js';
import type { FaultNode } from '../fault/processes.js';

/** Samples every running node's (group, term) → leader, to find two leaders in one term. */
export const startLeaderSampler = (
  nodes: readonly FaultNode[],
): { stop: () => Promise<{ doubled: string[]; samples: number }> } => {
  const leaders = new Map<string, Set<string>>();
  let stop = false;
  let samples = 0;
  const loop = (async () => {
    while (!stop) {
      for (const node of nodes.filter((n) => n.alive() && !n.stopped())) {
        try {
          const status = await clusterStatus(node);
          samples += 1;
          for (const group of [...status.groups, ...(status.meta === undefined ? [] : [status.meta])]) {
            if (group.leader === null) continue;
            const key = `${group.group}@${group.term}`;
            const seen = leaders.get(key) ?? new Set<string>();
            seen.add(group.leader);
            leaders.set(key, seen);
          }
        } catch {
          // A node starting or going away: the next sample.
        }
      }
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      stop = true;
      await loop;
      const doubled = [...leaders]
        .filter(([, seen]) => seen.size > 1)
        .map(([key, seen]) => `${key}: ${[...seen].join(',')}`);
      return { doubled, samples };
    },
  };
};
