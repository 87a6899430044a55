// Hot-path appends: each connection appends to its own context as fast as it is answered (or at
// --rate), after an uncounted warm-up (JIT, tokenizer workers, LevelDB).
import { runLoad } from '../load.js';
import { LatencyRecorder } from '../recorder.js';
import { booleanFlag, type Scenario } from '../scenario.js';
import { appendBody, appendRequest, createContexts } from '../workload.js';

export const appendScenario: Scenario = {
  name: 'append',
  describe: 'Hot-path appends: one context per connection, durable 201s per second and their latency',
  help: 'Each connection appends messages of --message-bytes to its own context. Every 201 is fsynced (on a quorum in a cluster).',
  spawn: { default: 1 },
  options: {
    'client-token-count': {
      type: 'boolean',
      default: false,
      describe: "Send the client's token_count, so the node does not count tokens",
    },
  },
  run: async (context) => {
    const { options } = context;
    const clientTokenCount = booleanFlag(context, 'client-token-count');
    const runId = Date.now().toString(36);
    const ids = Array.from({ length: options.connections }, (_, index) => `bench-append-${runId}-${index}`);
    await createContexts(context.targets, context.headers, ids);
    const load = (recorder: LatencyRecorder, durationMs: number, count: number | undefined) =>
      runLoad({
        targets: context.targets,
        connections: options.connections,
        durationMs,
        ...(count === undefined ? {} : { count }),
        ...(options.rate === undefined ? {} : { rate: options.rate }),
        headers: context.headers,
        recorder,
        next: (index, n) =>
          appendRequest(ids[index] as string, appendBody(options.messageBytes, index, n, clientTokenCount)),
      });
    if (options.warmupS > 0) {
      context.log(`warm-up ${options.warmupS}s (not counted)`);
      await load(new LatencyRecorder(), options.warmupS * 1000, undefined);
    }
    await context.withProgress('append', () =>
      load(context.recorder, options.durationS * 1000, options.count),
    );
    return { token_counts: clientTokenCount ? 'client' : 'server' };
  },
};
