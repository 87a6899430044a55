// Cold start: fill a node started here with N messages, stop it, start it again on the same data
// and time how long until it is live, ready, and answers its first read; then read every context
// once (those latencies are the run's plot) and check each still ends at the seq it was given.
// With --restarts, the stop and restart repeat on the same data and the times are the medians (a
// shared machine makes one restart noisy, and filling a million messages takes minutes).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type LocalNode, waitHealthy } from '../local-nodes.js';
import { runLoad } from '../load.js';
import { median, round } from '../stats.js';
import { booleanFlag, numberFlag, type BenchContext, type Scenario } from '../scenario.js';
import { appendBody, appendRequest, createContexts } from '../workload.js';

const directoryBytes = (path: string): number => {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    total += entry.isDirectory() ? directoryBytes(full) : statSync(full).size;
  }
  return total;
};

export const coldStartScenario: Scenario = {
  name: 'cold-start',
  describe: 'Cold start: restart a node holding N messages; time to live, ready and first read',
  help: 'Starts one node (--spawn 1 only), appends --messages over --contexts (client token counts), stops it (SIGTERM, or SIGKILL with --kill) and starts it on the same data directory (--restarts times; the times are medians). Goal: ready and first read within 5 s for 1,000,000 messages.',
  spawn: { default: 1, required: true },
  options: {
    messages: { type: 'number', default: 100_000, describe: 'Messages to hold before the restart' },
    contexts: { type: 'number', default: 1_000, describe: 'Contexts the messages are spread over' },
    kill: {
      type: 'boolean',
      default: false,
      describe: 'Stop the node with SIGKILL (a crash) instead of SIGTERM',
    },
    restarts: {
      type: 'number',
      default: 1,
      describe: 'Restarts on the filled data (each stopped the same way); the times are their medians',
    },
    'ready-timeout': { type: 'number', default: 300, describe: 'Seconds to wait for the restarted node' },
  },
  run: async (context) => {
    const { options } = context;
    const node = context.nodes[0];
    if (node === undefined) throw new Error('cold-start needs the node it starts (--spawn 1)');
    const messages = numberFlag(context, 'messages');
    const contexts = numberFlag(context, 'contexts');
    const readyTimeoutMs = numberFlag(context, 'ready-timeout') * 1000;
    const restartCount = numberFlag(context, 'restarts');
    if (!(messages >= 1) || !(contexts >= 1) || contexts > messages) {
      throw new Error('--messages and --contexts must be >= 1, with no more contexts than messages');
    }
    if (!Number.isInteger(restartCount) || restartCount < 1 || restartCount > 100) {
      throw new Error('--restarts must be an integer from 1 to 100');
    }
    const ids = Array.from({ length: contexts }, (_, index) => `bench-cold-${index}`);
    await createContexts(context.targets, context.headers, ids);
    // Context i gets messages i, i + contexts, ...: its last seq is the count of those.
    const expectedSeq = (index: number): number => Math.floor((messages - 1 - index) / contexts) + 1;
    const fillStartedMs = performance.now();
    await context.withProgress('fill', () =>
      runLoad({
        targets: context.targets,
        connections: options.connections,
        count: messages,
        headers: context.headers,
        recorder: context.recorder,
        next: (() => {
          let issued = 0;
          return (index: number) => {
            const n = issued++;
            const request = appendRequest(
              ids[n % contexts] as string,
              appendBody(options.messageBytes, index, n, true),
            );
            return { ...request, kind: 'fill' };
          };
        })(),
      }),
    );
    const fillS = (performance.now() - fillStartedMs) / 1000;
    if (context.recorder.errors > 0) throw new Error(`${context.recorder.errors} fill appends failed`);
    context.log(`filled ${messages} messages in ${round(fillS, 1)} s; stopping the node`);
    const signal = booleanFlag(context, 'kill') ? 'SIGKILL' : 'SIGTERM';
    await node.kill(signal);
    const dataBytes = directoryBytes(node.dataDir);

    const restarts: Restart[] = [];
    let wrongSeq = 0;
    for (let restartIndex = 0; restartIndex < restartCount; restartIndex++) {
      // Every restart after the first stops the node the same way again first.
      if (restartIndex > 0) await node.kill(signal);
      const restart = await restartAndProbe(node, context, ids[0] as string, readyTimeoutMs);
      restarts.push(restart);
      context.log(
        `restart ${restartIndex + 1}/${restartCount}: live ${wholeMs(restart.liveMs)} ms, ready ${wholeMs(restart.readyMs)} ms, first read ${wholeMs(restart.firstReadMs)} ms`,
      );
      wrongSeq += await readEveryContext(context, ids, expectedSeq);
    }
    const each = (pick: (restart: Restart) => number): string =>
      restarts.map((restart) => wholeMs(pick(restart))).join(' ');
    return {
      messages,
      contexts,
      fill_s: round(fillS, 1),
      data_dir_mib: round(dataBytes / 2 ** 20, 1),
      stop: signal,
      restarts: restartCount,
      // The median over the restarts (each listed below): one restart on a shared machine is noisy.
      live_ms: wholeMs(median(restarts.map((restart) => restart.liveMs))),
      ready_ms: wholeMs(median(restarts.map((restart) => restart.readyMs))),
      first_read_ms: wholeMs(median(restarts.map((restart) => restart.firstReadMs))),
      live_ms_each: each((restart) => restart.liveMs),
      ready_ms_each: each((restart) => restart.readyMs),
      first_read_ms_each: each((restart) => restart.firstReadMs),
      contexts_with_wrong_last_seq: wrongSeq,
    };
  },
};

interface Restart {
  readonly liveMs: number;
  readonly readyMs: number;
  readonly firstReadMs: number;
}

const wholeMs = (ms: number): number => round(ms, 0);

/** Starts the stopped node on its data; ms from the start to live, to ready and to a first non-empty read. */
const restartAndProbe = async (
  node: LocalNode,
  context: BenchContext,
  probe: string,
  readyTimeoutMs: number,
): Promise<Restart> => {
  const startedMs = performance.now();
  node.start();
  const liveMs = await waitHealthy(node, 'live', readyTimeoutMs);
  const readyMs = liveMs + (await waitHealthy(node, 'ready', readyTimeoutMs));
  while (performance.now() - startedMs < readyTimeoutMs) {
    try {
      const response = await fetch(`${node.url}/v1/contexts/${encodeURIComponent(probe)}/context`, {
        headers: context.headers,
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await response.json()) as { messages?: unknown[] };
      if (response.status === 200 && (body.messages?.length ?? 0) > 0)
        return { liveMs, readyMs, firstReadMs: performance.now() - startedMs };
    } catch {
      // Not answering yet.
    }
  }
  throw new Error(`no successful read within ${readyTimeoutMs} ms of the restart`);
};

/** Reads every context once (the cold reads' latencies); how many no longer end at their seq. */
const readEveryContext = async (
  context: BenchContext,
  ids: readonly string[],
  expectedSeq: (index: number) => number,
): Promise<number> => {
  let wrongSeq = 0;
  await runLoad({
    targets: context.targets,
    connections: Math.min(context.options.connections, ids.length),
    count: ids.length,
    headers: context.headers,
    recorder: context.recorder,
    next: (() => {
      let issued = 0;
      return () => {
        const index = issued++;
        const id = ids[index] as string;
        return {
          kind: 'read-after-restart',
          method: 'GET' as const,
          path: `/v1/contexts/${encodeURIComponent(id)}/tail?limit=1`,
          ok: (status: number, body: string) => {
            if (status !== 200) return false;
            const last = (JSON.parse(body) as { messages: { seq: number }[] }).messages.at(-1);
            if (last?.seq !== expectedSeq(index)) wrongSeq++;
            return true;
          },
        };
      };
    })(),
  });
  return wrongSeq;
};
