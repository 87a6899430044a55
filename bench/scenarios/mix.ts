// Read/write mix: appends, LLM-window reads (GET /context), tail reads (GET /tail) and, when asked,
// Prometheus scrapes (GET /metrics) over a set of prefilled contexts, in the proportions given; each
// kind gets its own latency line. A large --metrics-share is a scrape flood: how many appends a
// node still serves while a careless scraper loops on /metrics.
import type { BenchRequest } from '../load.js';
import { runLoad } from '../load.js';
import { LatencyRecorder } from '../recorder.js';
import { numberFlag, type Scenario } from '../scenario.js';
import { appendBody, appendRequest, createContexts } from '../workload.js';

export const mixScenario: Scenario = {
  name: 'mix',
  describe: 'Read/write mix: appends + LLM-window reads + tail reads over prefilled contexts',
  help: 'Each request picks a context of --contexts at random (seeded) and is a window read, a tail read, a scrape of /metrics or an append in the ratio --window-share : --tail-share : --metrics-share : the rest.',
  spawn: { default: 1 },
  options: {
    contexts: { type: 'number', default: 256, describe: 'Contexts the requests spread over' },
    prefill: { type: 'number', default: 20, describe: 'Messages appended to each context before the run' },
    'window-share': { type: 'number', default: 0.4, describe: 'Share of requests that read the LLM window' },
    'tail-share': { type: 'number', default: 0.3, describe: 'Share of requests that read the tail' },
    'tail-limit': { type: 'number', default: 50, describe: 'Messages per tail read' },
    'metrics-share': { type: 'number', default: 0, describe: 'Share of requests that scrape /metrics' },
  },
  run: async (context) => {
    const { options } = context;
    const contexts = numberFlag(context, 'contexts');
    const prefill = numberFlag(context, 'prefill');
    const windowShare = numberFlag(context, 'window-share');
    const tailShare = numberFlag(context, 'tail-share');
    const tailLimit = numberFlag(context, 'tail-limit');
    const metricsShare = numberFlag(context, 'metrics-share');
    if (
      !(contexts >= 1) ||
      !(prefill >= 0) ||
      windowShare < 0 ||
      tailShare < 0 ||
      metricsShare < 0 ||
      windowShare + tailShare + metricsShare > 1
    ) {
      throw new Error('--contexts >= 1, --prefill >= 0, and the shares must be >= 0 with a sum <= 1');
    }
    if (!(tailLimit >= 1 && tailLimit <= 1000)) throw new Error('--tail-limit must be 1..1000');
    const runId = Date.now().toString(36);
    const ids = Array.from({ length: contexts }, (_, index) => `bench-mix-${runId}-${index}`);
    await createContexts(context.targets, context.headers, ids);
    if (prefill > 0) {
      context.log(`prefilling ${contexts} contexts x ${prefill} messages`);
      await runLoad({
        targets: context.targets,
        connections: Math.min(options.connections, contexts),
        count: contexts * prefill,
        headers: context.headers,
        recorder: new LatencyRecorder(),
        next: (index, n) => {
          const slot = (n * Math.min(options.connections, contexts) + index) % contexts;
          return appendRequest(ids[slot] as string, appendBody(options.messageBytes, index, n, true));
        },
      });
    }
    // A small seeded generator per connection: the same run reads the same contexts.
    const seeds = Array.from({ length: options.connections }, (_, index) => index * 7919 + 1);
    const random = (index: number): number => {
      const next = ((seeds[index] as number) * 1103515245 + 12345) % 2147483648;
      seeds[index] = next;
      return next / 2147483648;
    };
    const nextRequest = (index: number, n: number): BenchRequest => {
      const id = ids[Math.floor(random(index) * contexts)] as string;
      const pick = random(index);
      const path = `/v1/contexts/${encodeURIComponent(id)}`;
      if (pick < windowShare) return { kind: 'window', method: 'GET', path: `${path}/context` };
      if (pick < windowShare + tailShare)
        return { kind: 'tail', method: 'GET', path: `${path}/tail?limit=${tailLimit}` };
      if (pick < windowShare + tailShare + metricsShare)
        return { kind: 'metrics', method: 'GET', path: '/metrics' };
      return appendRequest(id, appendBody(options.messageBytes, index, n, false));
    };
    const load = (recorder: LatencyRecorder, durationMs: number, count: number | undefined) =>
      runLoad({
        targets: context.targets,
        connections: options.connections,
        durationMs,
        ...(count === undefined ? {} : { count }),
        ...(options.rate === undefined ? {} : { rate: options.rate }),
        headers: context.headers,
        recorder,
        next: nextRequest,
      });
    if (options.warmupS > 0) await load(new LatencyRecorder(), options.warmupS * 1000, undefined);
    await context.withProgress('mix', () => load(context.recorder, options.durationS * 1000, options.count));
    return { contexts, window_share: windowShare, tail_share: tailShare, metrics_share: metricsShare };
  },
};
