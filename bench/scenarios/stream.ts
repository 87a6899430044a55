// Live streams: websocket subscribers over many contexts while appends arrive (bench/stream-bench.ts
// does the measuring). It starts its own node, because the node's connection cap
// (FASTPACA_STREAM_MAX_CONNECTIONS) must be above the subscribers plus the idle connections.
import { startLocalNodes, waitHealthy, type LocalNodes } from '../local-nodes.js';
import { numberFlag, type Scenario } from '../scenario.js';
import { runStreamBench, streamBenchDefaults } from '../stream-bench.js';

export const streamScenario: Scenario = {
  name: 'stream',
  describe: 'Websocket subscribers: append-to-receipt latency, append rate with and without them, idle RSS',
  help:
    'Measures the append rate without subscribers (closed loop), then --subscribers websocket subscribers over ' +
    '--contexts contexts while appends arrive at --rate/s (open loop: latency from each append to its receipt at ' +
    'every subscriber), the append rate again with them attached, and the RSS of --idle more idle connections. ' +
    'With --url it uses that node (whose stream connection cap must allow the subscribers).',
  spawn: { default: 1, ownNodes: true },
  options: {
    subscribers: { type: 'number', default: streamBenchDefaults.subscribers, describe: 'Live subscribers' },
    contexts: {
      type: 'number',
      default: streamBenchDefaults.contexts,
      describe: 'Contexts they spread over',
    },
    idle: {
      type: 'number',
      default: streamBenchDefaults.idleConnections,
      describe: 'Idle subscribers for RSS',
    },
  },
  defaults: { rate: streamBenchDefaults.rate, durationS: streamBenchDefaults.durationS },
  run: async (context) => {
    const subscribers = numberFlag(context, 'subscribers');
    const idle = numberFlag(context, 'idle');
    let local: LocalNodes | undefined;
    try {
      if (context.targets.length === 0) {
        local = await startLocalNodes({
          count: 1,
          env: {
            FASTPACA_STREAM_MAX_CONNECTIONS: String(subscribers + idle + 100),
            FASTPACA_TOKEN_ESTIMATOR: 'chars4',
          },
          ...(context.options.apiKey === undefined ? {} : { apiKey: context.options.apiKey }),
        });
        for (const node of local.nodes) await waitHealthy(node, 'ready', 60_000);
      }
      const node = local?.nodes[0];
      const url = node?.url ?? context.targets[0];
      if (url === undefined) throw new Error('no node to measure');
      const result = await context.withProgress('stream', () =>
        runStreamBench({
          ...streamBenchDefaults,
          url,
          ...(node === undefined ? {} : { node }),
          ...(context.options.apiKey === undefined ? {} : { apiKey: context.options.apiKey }),
          subscribers,
          contexts: numberFlag(context, 'contexts'),
          rate: context.options.rate ?? streamBenchDefaults.rate,
          durationS: context.options.durationS,
          connections: context.options.connections,
          idleConnections: idle,
          messageBytes: context.options.messageBytes,
          log: (line) => context.log(line),
        }),
      );
      const { scenario: _scenario, ...numbers } = result;
      return numbers;
    } finally {
      await local?.close();
    }
  },
};
