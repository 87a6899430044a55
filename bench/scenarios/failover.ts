// Failover: three nodes started here under round-robin append load; after --kill-after seconds the
// node leading the most groups is SIGKILLed, and one sample context per group is appended to (through
// the live nodes) until each has been acknowledged once. failover_ms is the time from the kill to
// the last of those acknowledgements: until then some group was not writable. The load's latency
// plot shows the stall.
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultGroupCount } from '../../src/context/routing.js';
import { groupStatuses, leaderCounts, oneContextPerGroup, waitLeadersBalanced } from '../cluster-status.js';
import { runLoad } from '../load.js';
import { round } from '../stats.js';
import { numberFlag, type Scenario } from '../scenario.js';
import { appendAccepted, appendBody, appendRequest, createContexts } from '../workload.js';

export const failoverScenario: Scenario = {
  name: 'failover',
  describe:
    'Failover: SIGKILL the busiest leader of a local 3-node cluster; time until every group is writable',
  help: 'Starts three nodes (--spawn 3 only), waits for balanced leadership, runs round-robin appends for --duration seconds and kills the node leading the most groups after --kill-after seconds.',
  spawn: { default: 3, required: true },
  defaults: { durationS: 15 },
  options: {
    'kill-after': { type: 'number', default: 5, describe: 'Seconds of load before the kill' },
    'recover-timeout': {
      type: 'number',
      default: 60,
      describe: 'Seconds to wait for every group to accept a write',
    },
  },
  run: async (context) => {
    const { options, nodes } = context;
    const killAfterMs = numberFlag(context, 'kill-after') * 1000;
    const limitMs = numberFlag(context, 'recover-timeout') * 1000;
    if (!(killAfterMs >= 0) || killAfterMs >= options.durationS * 1000) {
      throw new Error('--kill-after must be at least 0 and less than --duration');
    }
    const first = nodes[0];
    if (first === undefined || nodes.length !== 3)
      throw new Error('failover needs the three nodes it starts');
    const balancedMs = await waitLeadersBalanced(first.url, 3, 30_000);
    context.log(
      balancedMs === undefined
        ? 'leadership not balanced after 30 s; going on'
        : `leaders balanced after ${balancedMs} ms`,
    );
    const samples = oneContextPerGroup(`bench-failover-${Date.now().toString(36)}`);
    const loadIds = Array.from({ length: options.connections }, (_, index) => `bench-failover-load-${index}`);
    await createContexts(context.targets, context.headers, [...samples, ...loadIds]);
    const counts = await leaderCounts(first.url);
    const victim = [...nodes].sort((a, b) => (counts.get(b.name) ?? 0) - (counts.get(a.name) ?? 0))[0]!;
    const survivor = nodes.find((node) => node !== victim)!;
    const termsBefore = new Map((await groupStatuses(survivor.url)).map((view) => [view.group, view]));
    let killedAt = 0;
    let recoveredAt: (number | undefined)[] = [];

    const killAndProbe = async (): Promise<void> => {
      await sleep(killAfterMs);
      killedAt = performance.now();
      context.log(
        `SIGKILL ${victim.name} (led ${counts.get(victim.name) ?? 0} of ${defaultGroupCount} groups)`,
      );
      await victim.kill('SIGKILL');
      const live = nodes.filter((node) => node.alive());
      recoveredAt = await Promise.all(
        samples.map(async (id, index): Promise<number | undefined> => {
          for (let attempt = 0; performance.now() - killedAt < limitMs; attempt++) {
            const node = live[(index + attempt) % live.length]!;
            try {
              const response = await fetch(`${node.url}/v1/contexts/${encodeURIComponent(id)}/messages`, {
                method: 'POST',
                headers: context.headers,
                body: appendBody(100, index, attempt, true),
                signal: AbortSignal.timeout(5_000),
              });
              if (appendAccepted(response.status, await response.text())) return performance.now();
            } catch {
              // Refused or timed out: the next node.
            }
            await sleep(20);
          }
          return undefined;
        }),
      );
    };

    await context.withProgress('failover', () =>
      Promise.all([
        runLoad({
          targets: context.targets,
          connections: options.connections,
          durationMs: options.durationS * 1000,
          ...(options.rate === undefined ? {} : { rate: options.rate }),
          headers: context.headers,
          recorder: context.recorder,
          next: (index, n) =>
            appendRequest(loadIds[index] as string, appendBody(options.messageBytes, index, n, true)),
        }),
        killAndProbe(),
      ]),
    );
    const recovered = recoveredAt.filter((at): at is number => at !== undefined);
    const elections = { one: 0, more: 0 };
    for (const { group, term } of await groupStatuses(survivor.url)) {
      const before = termsBefore.get(group);
      if (before?.leader !== victim.name) continue;
      if (term - before.term <= 1) elections.one++;
      else elections.more++;
    }
    return {
      killed: victim.name,
      killed_led_groups: counts.get(victim.name) ?? 0,
      groups_recovered: recovered.length,
      groups: samples.length,
      failover_ms: recovered.length === samples.length ? round(Math.max(...recovered) - killedAt, 0) : null,
      groups_one_election: elections.one,
      groups_more_elections: elections.more,
    };
  },
};
