// Durability cadence: the latency of synced appends at a steady, modest rate (open loop, 1
// connection by default), so each latency is one trip through the group commit (turn + fsync on a
// quorum) rather than queueing. The node's own fsync counters over the run say how many appends
// shared each fsync and how long the fsyncs took.
import { runLoad } from '../load.js';
import { round } from '../stats.js';
import type { Scenario } from '../scenario.js';
import { appendBody, appendRequest, createContexts } from '../workload.js';

const fsyncCounters = async (
  targets: readonly string[],
): Promise<{ count: number; seconds: number; fsyncs: number }> => {
  let count = 0;
  let seconds = 0;
  let fsyncs = 0;
  for (const target of targets) {
    try {
      const text = await (await fetch(`${target}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      for (const line of text.split('\n')) {
        const value = Number(line.slice(line.lastIndexOf(' ') + 1));
        if (line.startsWith('fastpaca_raft_fsync_duration_seconds_count')) count += value;
        else if (line.startsWith('fastpaca_raft_fsync_duration_seconds_sum')) seconds += value;
        else if (line.startsWith('fastpaca_raft_fsyncs_total')) fsyncs += value;
      }
    } catch {
      // A node that does not answer adds nothing.
    }
  }
  return { count, seconds, fsyncs };
};

export const durabilityScenario: Scenario = {
  name: 'durability',
  describe: 'Durability cadence: latency distribution of synced appends at a steady rate',
  help: "Appends at --rate (default 50/s) on --connections (default 1), open loop: each latency is one durable write (every 201 is fsynced). Reports the fsyncs per append and the mean fsync time from the nodes' /metrics.",
  spawn: { default: 1 },
  defaults: { connections: 1, rate: 50 },
  run: async (context) => {
    const { options } = context;
    const runId = Date.now().toString(36);
    const ids = Array.from({ length: options.connections }, (_, index) => `bench-durable-${runId}-${index}`);
    await createContexts(context.targets, context.headers, ids);
    const before = await fsyncCounters(context.targets);
    await context.withProgress('durability', () =>
      runLoad({
        targets: context.targets,
        connections: options.connections,
        durationMs: options.durationS * 1000,
        ...(options.count === undefined ? {} : { count: options.count }),
        ...(options.rate === undefined ? {} : { rate: options.rate }),
        headers: context.headers,
        recorder: context.recorder,
        next: (index, n) =>
          appendRequest(ids[index] as string, appendBody(options.messageBytes, index, n, true)),
      }),
    );
    const after = await fsyncCounters(context.targets);
    const fsyncs = after.fsyncs - before.fsyncs;
    const timed = after.count - before.count;
    return {
      fsyncs,
      fsyncs_per_append: context.recorder.ok === 0 ? null : round(fsyncs / context.recorder.ok, 2),
      fsync_mean_ms: timed === 0 ? null : round(((after.seconds - before.seconds) * 1000) / timed, 3),
    };
  },
};
