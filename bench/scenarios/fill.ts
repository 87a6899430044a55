// Fill: many contexts with a few messages each (client token counts), then the node's RSS: the
// memory a large working set costs.
import { runLoad } from '../load.js';
import { round } from '../stats.js';
import { numberFlag, type Scenario } from '../scenario.js';
import { appendBody, appendRequest, createContexts } from '../workload.js';

export const fillScenario: Scenario = {
  name: 'fill',
  describe: 'Fill many contexts with a few messages each, then report the node RSS',
  help: 'Creates --contexts contexts and appends --messages to each (client token counts), then reads the RSS of the node started here (unknown with --url).',
  spawn: { default: 1 },
  options: {
    contexts: { type: 'number', default: 100_000, describe: 'Contexts to create' },
    messages: { type: 'number', default: 20, describe: 'Messages per context' },
  },
  run: async (context) => {
    const contexts = numberFlag(context, 'contexts');
    const messages = numberFlag(context, 'messages');
    if (!(contexts >= 1) || !(messages >= 1)) throw new Error('--contexts and --messages must be >= 1');
    const ids = Array.from({ length: contexts }, (_, index) => `bench-fill-${index}`);
    const startedMs = performance.now();
    await context.withProgress('fill', async () => {
      await createContexts(context.targets, context.headers, ids, context.options.connections);
      await runLoad({
        targets: context.targets,
        connections: context.options.connections,
        count: contexts * messages,
        headers: context.headers,
        recorder: context.recorder,
        next: (() => {
          let issued = 0;
          return (index: number) => {
            const n = issued++;
            return appendRequest(
              ids[n % contexts] as string,
              appendBody(context.options.messageBytes, index, n, true),
            );
          };
        })(),
      });
    });
    const rss = context.nodes[0]?.rssBytes();
    return {
      contexts,
      messages,
      fill_s: round((performance.now() - startedMs) / 1000, 1),
      rss_mib: rss === undefined ? null : round(rss / 2 ** 20, 0),
    };
  },
};
