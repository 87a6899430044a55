// The live-stream benchmark (issue 12), one node started here (or an existing one):
//  1. the append rate without subscribers (closed loop, `connections` clients, `durationS`);
//  2. `subscribers` websocket subscribers over `contexts` contexts, appends at `rate`/s (open loop)
//     for `durationS`: latency from each append's 201 to its receipt at every subscriber (p50/p99
//     per delivery, and per append until the last of its subscribers has it);
//  3. the append rate again with the subscribers attached (same loop as 1);
//  4. the node's RSS with `idleConnections` idle websocket subscribers more.
// runStreamBench(options) returns the numbers; `fastpaca bench stream` (scenarios/stream.ts) starts
// the node (with a connection cap above the subscribers) and prints them.

import { Pool } from 'undici';
import WebSocket from 'ws';

import type { LocalNode } from './local-nodes.js';
import { cpuSeconds } from './proc-stat.js';
import { newLatencyHistogram, percentileMs, round } from './stats.js';
import { createContexts, messageText } from './workload.js';

export interface StreamBenchOptions {
  /** The node's HTTP base URL. */
  readonly url: string;
  /** The node when it was started here (its CPU and RSS are read from /proc); absent for --url. */
  readonly node?: LocalNode;
  readonly apiKey?: string;
  readonly contexts: number;
  readonly subscribers: number;
  /** Appends per second while measuring delivery latency. */
  readonly rate: number;
  readonly durationS: number;
  /** Concurrent clients of the closed-loop append-rate runs. */
  readonly connections: number;
  readonly idleConnections: number;
  readonly messageBytes: number;
  /** Progress lines (default console.log). */
  readonly log?: (line: string) => void;
}

export const streamBenchDefaults: Omit<StreamBenchOptions, 'url'> = {
  contexts: 100,
  subscribers: 1000,
  rate: 1000,
  durationS: 10,
  connections: 32,
  idleConnections: 10_000,
  messageBytes: 300,
};

export interface StreamBenchResult {
  readonly scenario: 'stream';
  readonly subscribers: number;
  readonly contexts: number;
  readonly rate_target: number;
  readonly appends_sent: number;
  readonly appends_acked: number;
  readonly deliveries_expected: number;
  readonly deliveries: number;
  /** Receipts beyond one per subscriber (a resumed subscriber sent an event twice): must be 0. */
  readonly deliveries_duplicated: number;
  readonly delivery_p50_ms: number;
  readonly delivery_p99_ms: number;
  readonly all_subscribers_p99_ms: number;
  readonly send_to_receipt_p50_ms: number;
  readonly send_to_receipt_p99_ms: number;
  readonly append_rate_without_subscribers: number;
  readonly append_rate_with_subscribers: number;
  readonly rate_ratio: number;
  /** The node's own CPU (user + system) per 1,000 appends in each closed-loop phase (null: external node). */
  readonly node_cpu_s_per_1000_appends_without: number | null;
  readonly node_cpu_s_per_1000_appends_with: number | null;
  /**
   * How busy the machine was in each closed-loop phase, in % of one core: the node (null: external
   * node) and this load generator, which also receives every subscriber's frames. Their sum near the
   * machine's cores means the ratio measures the machine as much as the node.
   */
  readonly node_cpu_percent_without: number | null;
  readonly node_cpu_percent_with: number | null;
  readonly client_cpu_percent_without: number;
  readonly client_cpu_percent_with: number;
  /** Live subscribers' connections that dropped and were resumed from their cursor, as a client would. */
  readonly subscriber_reconnects: number;
  readonly idle_connections: number;
  readonly idle_connections_opened: number;
  readonly rss_before_idle_mib: number | null;
  readonly rss_with_idle_mib: number | null;
}

/**
 * CPU seconds (user + system) the node process has used so far, from /proc (Linux); NaN for an
 * external node. Separates the node's cost from the load generator's on a shared machine.
 */
const nodeCpuSeconds = (node: LocalNode | undefined): number => {
  const pid = node?.pid();
  if (pid === undefined) return Number.NaN;
  try {
    return cpuSeconds(pid);
  } catch {
    return Number.NaN;
  }
};

/** CPU seconds (user + system) this load generator has used so far. */
const clientCpuSeconds = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** CPU seconds over a phase as % of one core (null when unknown). */
const percentOfCore = (seconds: number, phaseS: number): number | null =>
  Number.isFinite(seconds) && phaseS > 0 ? round((seconds / phaseS) * 100, 0) : null;

const perKilo = (seconds: number, appends: number): number | null =>
  Number.isFinite(seconds) && appends > 0 ? round((seconds / appends) * 1000, 3) : null;

const headersFor = (apiKey: string | undefined): Record<string, string> => ({
  'content-type': 'application/json',
  ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
});

/** One append; the seq it got, or undefined on failure (an error answer or a broken connection). */
const appendOne = async (
  pool: Pool,
  contextId: string,
  body: string,
  apiKey: string | undefined,
): Promise<number | undefined> => {
  try {
    const response = await pool.request({
      path: `/v1/contexts/${encodeURIComponent(contextId)}/messages`,
      method: 'POST',
      headers: headersFor(apiKey),
      body,
    });
    const text = await response.body.text();
    return response.statusCode === 201 ? (JSON.parse(text) as { seq: number }).seq : undefined;
  } catch {
    return undefined;
  }
};

/** Appends per second of `connections` closed-loop clients over the contexts, for `durationS`. */
const measureAppendRate = async (
  pool: Pool,
  ids: readonly string[],
  options: StreamBenchOptions,
): Promise<number> => {
  const deadline = performance.now() + options.durationS * 1000;
  let acked = 0;
  const client = async (index: number): Promise<void> => {
    for (let n = 0; performance.now() < deadline; n++) {
      const id = ids[(index + n * options.connections) % ids.length] ?? '';
      const body = JSON.stringify({
        message: {
          role: 'user',
          parts: [{ type: 'text', text: messageText(options.messageBytes, index, n) }],
          token_count: 75,
        },
      });
      if ((await appendOne(pool, id, body, options.apiKey)) !== undefined) acked++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: options.connections }, (_, index) => client(index)));
  return acked / ((performance.now() - started) / 1000);
};

interface Delivery {
  sentAt?: number;
  ackAt?: number;
  received: number;
  lastAt: number;
}

const pingFrame = Buffer.from('{"type":"ping"}');
const messagePrefix = Buffer.from('{"type":"message"');
const seqField = Buffer.from('"seq":');

interface MessageFrame {
  readonly type: string;
  readonly seq?: number;
}

/** Opens a websocket subscriber from `cursor`; resolves once open. */
const subscribe = (
  wsBase: string,
  contextId: string,
  apiKey: string | undefined,
  onFrame?: (frame: MessageFrame, at: number) => void,
  cursor = 0,
): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(
      `${wsBase}/v1/contexts/${encodeURIComponent(contextId)}/stream?cursor=${cursor}`,
      {
        headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
        perMessageDeflate: false,
        skipUTF8Validation: true,
      },
    );
    socket.on('message', (data: Buffer) => {
      if (data.equals(pingFrame)) {
        socket.send('{"type":"pong"}');
        return;
      }
      if (onFrame === undefined) return;
      // The subscribers share the machine with the node: no JSON.parse of every frame here. A
      // message frame starts with its type, and its own "seq" comes before the message's.
      if (data.indexOf(messagePrefix) !== 0) {
        onFrame({ type: 'other' }, performance.now());
        return;
      }
      let at = data.indexOf(seqField) + seqField.length;
      let seq = 0;
      for (let digit = data[at]; digit !== undefined && digit >= 48 && digit <= 57; digit = data[++at])
        seq = seq * 10 + digit - 48;
      onFrame({ type: 'message', seq }, performance.now());
    });
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });

/** Reconnects after a dropped connection, each up to this many times. */
const resumesMax = 10;

/**
 * A live subscriber that behaves as the README asks of a client: when its connection drops it
 * reconnects with its cursor, so the run measures delivery, not connection luck. The benchmark's
 * contexts see no manual compaction, so a message's version is its seq and the last seq received
 * is the cursor.
 */
class ResumingSubscriber {
  reconnects = 0;
  private socket: WebSocket | undefined;
  private cursor = 0;
  private stopped = false;

  constructor(
    private readonly open: (
      cursor: number,
      onFrame: (frame: MessageFrame, at: number) => void,
    ) => Promise<WebSocket>,
    private readonly onFrame: (frame: MessageFrame, at: number) => void,
  ) {}

  async start(): Promise<this> {
    await this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.socket?.terminate();
  }

  private async connect(): Promise<void> {
    const socket = await this.open(this.cursor, (frame, at) => {
      if (frame.seq !== undefined) this.cursor = Math.max(this.cursor, frame.seq);
      this.onFrame(frame, at);
    });
    this.socket = socket;
    socket.once('close', () => {
      if (this.stopped || this.reconnects >= resumesMax) return;
      this.reconnects += 1;
      setTimeout(() => {
        if (!this.stopped) this.connect().catch(() => undefined);
      }, 100);
    });
  }
}

const inBatches = async <T>(
  count: number,
  batch: number,
  open: (index: number) => Promise<T>,
): Promise<T[]> => {
  const all: T[] = [];
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start);
    const settled = await Promise.allSettled(Array.from({ length: size }, (_, i) => open(start + i)));
    for (const result of settled) if (result.status === 'fulfilled') all.push(result.value);
  }
  return all;
};

export const runStreamBench = async (options: StreamBenchOptions): Promise<StreamBenchResult> => {
  const log = options.log ?? ((line: string) => console.log(line));
  const { node, url } = options;
  const wsBase = url.replace(/^http/, 'ws');
  const pool = new Pool(url, { connections: Math.max(options.connections, 64), pipelining: 1 });
  const sockets: WebSocket[] = [];
  const live: ResumingSubscriber[] = [];
  try {
    const runId = Date.now().toString(36);
    const ids = Array.from({ length: options.contexts }, (_, i) => `stream-bench-${runId}-${i}`);
    await createContexts([url], headersFor(options.apiKey), ids);
    // Warm-up (JIT, tokenizer, LevelDB), not counted.
    await measureAppendRate(pool, ids, { ...options, durationS: Math.min(3, options.durationS) });
    let cpuBefore = nodeCpuSeconds(node);
    let clientCpuBefore = clientCpuSeconds();
    const withoutSubscribers = await measureAppendRate(pool, ids, options);
    const nodeCpuWithout = nodeCpuSeconds(node) - cpuBefore;
    const clientCpuWithout = clientCpuSeconds() - clientCpuBefore;
    const cpuPerKiloWithout = perKilo(nodeCpuWithout, withoutSubscribers * options.durationS);
    log(
      `append rate without subscribers: ${round(withoutSubscribers, 0)}/s (node CPU ${cpuPerKiloWithout ?? '?'} s per 1,000 appends; ` +
        `node ${percentOfCore(nodeCpuWithout, options.durationS) ?? '?'} %, load generator ${percentOfCore(clientCpuWithout, options.durationS)} % of a core)`,
    );

    // Fresh contexts for the subscribers (nothing to replay), spread evenly.
    const streamed = ids.map((id) => `${id}-live`);
    await createContexts([url], headersFor(options.apiKey), streamed);
    const deliveries = new Map<string, Delivery>();
    const subscribersOf = new Map<string, number>();
    let measuring = false;
    const deliveryLatency = newLatencyHistogram();
    // From the request's start to receipt (the 201 usually arrives after the event: the node sends
    // the frames when it applies the entry, and answers the request after that).
    const sendToReceipt = newLatencyHistogram();
    const opened = await inBatches(options.subscribers, 100, (index) => {
      const id = streamed[index % streamed.length] ?? '';
      subscribersOf.set(id, (subscribersOf.get(id) ?? 0) + 1);
      const open = (cursor: number, onFrame: (frame: MessageFrame, at: number) => void): Promise<WebSocket> =>
        subscribe(wsBase, id, options.apiKey, onFrame, cursor);
      return new ResumingSubscriber(open, (frame, at) => {
        if (!measuring || frame.type !== 'message' || frame.seq === undefined) return;
        const key = `${id}:${frame.seq}`;
        let entry = deliveries.get(key);
        if (entry === undefined) {
          entry = { received: 0, lastAt: 0 };
          deliveries.set(key, entry);
        }
        entry.received++;
        entry.lastAt = Math.max(entry.lastAt, at);
        if (entry.sentAt !== undefined)
          sendToReceipt.record(Math.max(1, Math.round((at - entry.sentAt) * 1e6)));
        // Delivered before its 201 reached the client: counted as 0 once the 201 is known.
        if (entry.ackAt !== undefined)
          deliveryLatency.record(Math.max(1, Math.round((at - entry.ackAt) * 1e6)));
      }).start();
    });
    live.push(...opened);
    log(`${opened.length} subscribers open`);
    await new Promise((resolve) => setTimeout(resolve, 1000));

    // Open loop at `rate`/s, round-robin over the contexts.
    measuring = true;
    const total = options.rate * options.durationS;
    let sent = 0;
    let acked = 0;
    const inflight = new Set<Promise<void>>();
    const started = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * options.rate));
      for (; sent < due; sent++) {
        const id = streamed[sent % streamed.length] ?? '';
        const body = JSON.stringify({
          message: {
            role: 'user',
            parts: [{ type: 'text', text: messageText(options.messageBytes, 0, sent) }],
            token_count: 75,
          },
        });
        const sentAt = performance.now();
        const request = appendOne(pool, id, body, options.apiKey).then((seq) => {
          if (seq === undefined) return;
          acked++;
          const key = `${id}:${seq}`;
          const at = performance.now();
          let entry = deliveries.get(key);
          if (entry === undefined) {
            entry = { received: 0, lastAt: 0 };
            deliveries.set(key, entry);
          }
          entry.ackAt = at;
          entry.sentAt = sentAt;
          // Deliveries that beat the 201 count as (almost) no latency.
          for (let i = 0; i < entry.received; i++) {
            deliveryLatency.record(1);
            sendToReceipt.record(Math.max(1, Math.round((entry.lastAt - sentAt) * 1e6)));
          }
        });
        inflight.add(request);
        void request.finally(() => inflight.delete(request));
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await Promise.all(inflight);
    // Deliveries of the acknowledged appends (replayed older ones do not count), expected and got.
    const tally = (): { expected: number; delivered: number; duplicated: number } => {
      let expectedSum = 0;
      let deliveredSum = 0;
      let duplicatedSum = 0;
      for (const [key, entry] of deliveries) {
        if (entry.ackAt === undefined) continue;
        const wanted = subscribersOf.get(key.slice(0, key.lastIndexOf(':'))) ?? 0;
        expectedSum += wanted;
        deliveredSum += Math.min(wanted, entry.received);
        // More receipts than subscribers: a resumed subscriber got an event twice.
        duplicatedSum += Math.max(0, entry.received - wanted);
      }
      return { expected: expectedSum, delivered: deliveredSum, duplicated: duplicatedSum };
    };
    // Let the last deliveries arrive (bounded).
    for (let wait = 0; wait < 100 && tally().delivered < tally().expected; wait++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const { expected, delivered, duplicated } = tally();
    const allSubscribers = newLatencyHistogram();
    for (const [key, entry] of deliveries) {
      if (entry.ackAt === undefined) continue;
      const wanted = subscribersOf.get(key.slice(0, key.lastIndexOf(':'))) ?? 0;
      // An append some subscriber never got counts as the whole run's length.
      const lastAt = entry.received >= wanted ? entry.lastAt : performance.now() + 60_000;
      allSubscribers.record(Math.max(1, Math.round((lastAt - entry.ackAt) * 1e6)));
    }
    measuring = false;
    log(
      `${acked}/${total} appends acked at ${options.rate}/s; ${delivered}/${expected} deliveries ` +
        `(${duplicated} duplicated, ${live.reduce((sum, subscriber) => sum + subscriber.reconnects, 0)} reconnects); ` +
        `201 -> receipt p50 ${percentileMs(deliveryLatency, 50)} ms, p99 ${percentileMs(deliveryLatency, 99)} ms; ` +
        `201 -> all subscribers p99 ${percentileMs(allSubscribers, 99)} ms; ` +
        `request start -> receipt p50 ${percentileMs(sendToReceipt, 50)} ms, p99 ${percentileMs(sendToReceipt, 99)} ms`,
    );

    // The same closed loop, now into the contexts the subscribers follow.
    cpuBefore = nodeCpuSeconds(node);
    clientCpuBefore = clientCpuSeconds();
    const withSubscribers = await measureAppendRate(pool, streamed, options);
    const nodeCpuWith = nodeCpuSeconds(node) - cpuBefore;
    const clientCpuWith = clientCpuSeconds() - clientCpuBefore;
    const cpuPerKiloWith = perKilo(nodeCpuWith, withSubscribers * options.durationS);
    log(
      `append rate with ${opened.length} subscribers: ${round(withSubscribers, 0)}/s (node CPU ${cpuPerKiloWith ?? '?'} s per 1,000 appends; ` +
        `node ${percentOfCore(nodeCpuWith, options.durationS) ?? '?'} %, load generator ${percentOfCore(clientCpuWith, options.durationS)} % of a core)`,
    );

    // Idle subscribers of contexts with no history and no appends: what a connection itself costs.
    const quiet = ids.map((id) => `${id}-idle`);
    await createContexts([url], headersFor(options.apiKey), quiet);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rssBefore = node === undefined ? null : round(node.rssBytes() / 2 ** 20, 0);
    const idle = await inBatches(options.idleConnections, 500, (index) =>
      subscribe(wsBase, quiet[index % quiet.length] ?? '', options.apiKey),
    );
    sockets.push(...idle);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rssWithIdle = node === undefined ? null : round(node.rssBytes() / 2 ** 20, 0);
    log(`${idle.length} idle subscribers more: node RSS ${rssBefore} -> ${rssWithIdle} MiB`);

    return {
      scenario: 'stream',
      subscribers: opened.length,
      contexts: options.contexts,
      rate_target: options.rate,
      appends_sent: sent,
      appends_acked: acked,
      deliveries_expected: expected,
      deliveries: delivered,
      deliveries_duplicated: duplicated,
      delivery_p50_ms: percentileMs(deliveryLatency, 50),
      delivery_p99_ms: percentileMs(deliveryLatency, 99),
      all_subscribers_p99_ms: percentileMs(allSubscribers, 99),
      send_to_receipt_p50_ms: percentileMs(sendToReceipt, 50),
      send_to_receipt_p99_ms: percentileMs(sendToReceipt, 99),
      append_rate_without_subscribers: round(withoutSubscribers, 0),
      append_rate_with_subscribers: round(withSubscribers, 0),
      rate_ratio: round(withSubscribers / withoutSubscribers, 2),
      node_cpu_s_per_1000_appends_without: cpuPerKiloWithout,
      node_cpu_s_per_1000_appends_with: cpuPerKiloWith,
      node_cpu_percent_without: percentOfCore(nodeCpuWithout, options.durationS),
      node_cpu_percent_with: percentOfCore(nodeCpuWith, options.durationS),
      client_cpu_percent_without: percentOfCore(clientCpuWithout, options.durationS) ?? 0,
      client_cpu_percent_with: percentOfCore(clientCpuWith, options.durationS) ?? 0,
      subscriber_reconnects: live.reduce((sum, subscriber) => sum + subscriber.reconnects, 0),
      idle_connections: options.idleConnections,
      idle_connections_opened: idle.length,
      rss_before_idle_mib: rssBefore,
      rss_with_idle_mib: rssWithIdle,
    };
  } finally {
    for (const subscriber of live) subscriber.stop();
    for (const socket of sockets) socket.terminate();
    await pool.close();
  }
};
