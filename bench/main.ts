// Service benchmarks against a node started here (or an existing one with --url). Each scenario
// prints a human summary and, as its last line, one JSON object with the medians of several runs.
//   npm run bench -- append --connections 32 --duration 10 [--runs 3] [--client-token-count] [--client undici]
//   npm run bench -- append --archiver [--database-url postgres://...]   (archiver off vs on: archive-bench.ts)
//   npm run bench -- fill --contexts 100000 --messages 20   (reports the node's RSS afterwards)
//   [--node-option=--max-old-space-size=512] passes Node/V8 flags to the node started here
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Pool } from 'undici';
import { createContexts, messageText, runAppendLoad } from './append-load.js';
import { archiveComparison } from './archive-bench.js';
import { startNodeProcess, type NodeProcess } from './node-process.js';
import { medianOfRuns, round, type RunResult } from './stats.js';

interface TargetOptions {
  readonly url: string | undefined;
  readonly port: number;
  readonly apiKey: string | undefined;
  readonly nodeOption: readonly string[] | undefined;
}

const withTarget = async <T>(
  options: TargetOptions,
  body: (url: string, node: NodeProcess | undefined) => Promise<T>,
): Promise<T> => {
  if (options.url !== undefined) return body(options.url, undefined);
  const node = await startNodeProcess({
    port: options.port,
    raftPort: options.port + 1000,
    nodeArgs: options.nodeOption ?? [],
  });
  try {
    return await body(node.url, node);
  } finally {
    await node.stop();
  }
};

const appendScenario = async (
  argv: TargetOptions & {
    connections: number;
    duration: number;
    runs: number;
    messageBytes: number;
    clientTokenCount: boolean;
    client: 'raw' | 'undici';
    archiver: boolean;
    databaseUrl: string | undefined;
  },
): Promise<void> => {
  if (argv.archiver) {
    await archiveComparison(argv);
    return;
  }
  await withTarget(argv, async (url) => {
    const runs: RunResult[] = [];
    // One short warm-up run (JIT, tokenizer workers, LevelDB) that is not counted.
    await runAppendLoad({
      url,
      connections: argv.connections,
      durationMs: 2000,
      messageBytes: argv.messageBytes,
      clientTokenCount: argv.clientTokenCount,
      client: argv.client,
      runId: 'warmup',
      ...(argv.apiKey ? { apiKey: argv.apiKey } : {}),
    });
    for (let run = 0; run < argv.runs; run++) {
      const result = await runAppendLoad({
        url,
        connections: argv.connections,
        durationMs: argv.duration * 1000,
        messageBytes: argv.messageBytes,
        clientTokenCount: argv.clientTokenCount,
        client: argv.client,
        runId: `r${run}-${Date.now()}`,
        ...(argv.apiKey ? { apiKey: argv.apiKey } : {}),
      });
      runs.push(result);
      console.log(
        `run ${run + 1}/${argv.runs}: ${result.ops_per_s} appends/s, p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, errors ${result.errors}`,
      );
    }
    const summary = medianOfRuns(runs);
    console.log(
      `append, ${argv.connections} connections, ${argv.duration}s x ${argv.runs} runs, ${argv.clientTokenCount ? 'client' : 'server'} token counts: median ${summary.ops_per_s} appends/s, p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms`,
    );
    console.log(
      JSON.stringify({
        scenario: 'append',
        connections: argv.connections,
        client: argv.client,
        token_counts: argv.clientTokenCount ? 'client' : 'server',
        ...summary,
        runs,
      }),
    );
  });
};

const fillScenario = async (
  argv: TargetOptions & { contexts: number; messages: number; concurrency: number },
): Promise<void> => {
  await withTarget(argv, async (url, node) => {
    const pool = new Pool(url, { connections: argv.concurrency, pipelining: 1 });
    const headers = {
      'content-type': 'application/json',
      ...(argv.apiKey ? { authorization: `Bearer ${argv.apiKey}` } : {}),
    };
    const startedMs = performance.now();
    let next = 0;
    let errors = 0;
    const worker = async (): Promise<void> => {
      for (let c = next++; c < argv.contexts; c = next++) {
        const id = `fill-${c}`;
        await createContexts(
          pool,
          {
            url,
            connections: 1,
            durationMs: 0,
            messageBytes: 300,
            clientTokenCount: true,
            runId: 'fill',
            ...(argv.apiKey ? { apiKey: argv.apiKey } : {}),
          },
          [id],
        );
        for (let m = 0; m < argv.messages; m++) {
          const text = messageText(300, c, m);
          const body = JSON.stringify({
            message: {
              role: m % 2 === 0 ? 'user' : 'assistant',
              parts: [{ type: 'text', text }],
              token_count: 75,
            },
          });
          const response = await pool.request({
            path: `/v1/contexts/${id}/messages`,
            method: 'POST',
            headers,
            body,
          });
          await response.body.text();
          if (response.statusCode !== 201) errors++;
        }
        if (c % 10_000 === 0 && c > 0)
          console.log(`${c} contexts filled, rss ${node ? round(node.rssBytes() / 2 ** 20, 0) : '?'} MiB`);
      }
    };
    await Promise.all(Array.from({ length: argv.concurrency }, worker));
    await pool.close();
    const elapsedS = (performance.now() - startedMs) / 1000;
    const rssMiB = node ? round(node.rssBytes() / 2 ** 20, 0) : null;
    console.log(
      `filled ${argv.contexts} contexts x ${argv.messages} messages in ${round(elapsedS, 1)} s; node RSS ${rssMiB ?? 'unknown (external node)'} MiB`,
    );
    console.log(
      JSON.stringify({
        scenario: 'fill',
        contexts: argv.contexts,
        messages: argv.messages,
        seconds: round(elapsedS, 1),
        rss_mib: rssMiB,
        node_options: argv.nodeOption ?? [],
        errors,
      }),
    );
  });
};

await yargs(hideBin(process.argv))
  .scriptName('bench')
  .option('url', { type: 'string', describe: 'target an existing node instead of starting one' })
  .option('port', { type: 'number', default: 4600, describe: 'HTTP port of the node started here' })
  .option('api-key', { type: 'string' })
  .option('node-option', {
    type: 'string',
    array: true,
    describe:
      'Node/V8 flag for the node started here, e.g. --node-option=--max-old-space-size=512 (repeatable)',
  })
  .command(
    'append',
    'concurrent appends, one context per connection',
    (y) =>
      y
        .option('connections', { type: 'number', default: 32 })
        .option('duration', { type: 'number', default: 10, describe: 'seconds per run' })
        .option('runs', { type: 'number', default: 3 })
        .option('message-bytes', { type: 'number', default: 300 })
        .option('client-token-count', { type: 'boolean', default: false })
        .option('client', {
          choices: ['raw', 'undici'] as const,
          default: 'raw' as const,
          describe: 'HTTP client of the load generator (raw: lean keep-alive sockets)',
        })
        .option('archiver', {
          type: 'boolean',
          default: false,
          describe:
            'run with the archiver off, then on (fresh nodes), and report the loss and the archive lag',
        })
        .option('database-url', {
          type: 'string',
          describe: 'with --archiver: archive here instead of an embedded PostgreSQL started by the bench',
        }),
    (argv) => appendScenario(argv),
  )
  .command(
    'fill',
    'many contexts with a few messages each, then report RSS',
    (y) =>
      y
        .option('contexts', { type: 'number', default: 100_000 })
        .option('messages', { type: 'number', default: 20 })
        .option('concurrency', { type: 'number', default: 64 }),
    (argv) => fillScenario(argv),
  )
  .demandCommand(1)
  .strict()
  .help()
  .parseAsync();
