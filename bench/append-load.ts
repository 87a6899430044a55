// The append workload: N concurrent clients, each appending ~300-byte text messages to its own
// context over HTTP keep-alive connections, for a fixed duration. Measures throughput and latency.
import { Pool } from 'undici';
import { RawHttpConnection } from './raw-http.js';
import { newLatencyHistogram, percentileMs, recordSince, round, type RunResult } from './stats.js';

export interface AppendLoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationMs: number;
  readonly messageBytes: number;
  /** Send the client's own token_count, so the server skips counting. */
  readonly clientTokenCount: boolean;
  readonly apiKey?: string;
  readonly runId: string;
  /**
   * HTTP client of the load generator: 'raw' (default) is a lean keep-alive client that leaves the
   * shared CPU to the node; 'undici' is the general-purpose client, for comparison.
   */
  readonly client?: 'raw' | 'undici';
}

const words =
  'the quick brown fox jumps over a lazy dog while models read context windows of chat history'.split(' ');

/** Deterministic English-like text of about `bytes` bytes, different per (client, n). */
export const messageText = (bytes: number, client: number, n: number): string => {
  let text = `client ${client} message ${n}:`;
  for (let i = 0; text.length < bytes; i++) text += ` ${words[(client * 7 + n * 3 + i) % words.length]}`;
  return text.slice(0, bytes);
};

const headersFor = (apiKey: string | undefined): Record<string, string> => ({
  'content-type': 'application/json',
  ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
});

export const createContexts = async (
  pool: Pool,
  options: AppendLoadOptions,
  ids: readonly string[],
): Promise<void> => {
  const body = JSON.stringify({
    token_budget: 1_000_000,
    policy: { strategy: 'last_n', config: { limit: 200 } },
  });
  await Promise.all(
    ids.map(async (id) => {
      const response = await pool.request({
        path: `/v1/contexts/${encodeURIComponent(id)}`,
        method: 'PUT',
        headers: headersFor(options.apiKey),
        body,
      });
      await response.body.text();
      if (response.statusCode >= 300) throw new Error(`PUT context failed: ${response.statusCode}`);
    }),
  );
};

export const runAppendLoad = async (options: AppendLoadOptions): Promise<RunResult> => {
  const pool = new Pool(options.url, { connections: options.connections, pipelining: 1 });
  const ids = Array.from({ length: options.connections }, (_, i) => `bench-${options.runId}-${i}`);
  try {
    await createContexts(pool, options, ids);
    const histogram = newLatencyHistogram();
    const headers = headersFor(options.apiKey);
    // Raw connections are opened before the clock starts, like undici's pool after the PUTs above.
    const connections: (RawHttpConnection | undefined)[] =
      options.client === 'undici'
        ? []
        : await Promise.all(ids.map(() => RawHttpConnection.open(options.url)));
    let ok = 0;
    let errors = 0;
    const startedMs = performance.now();
    const deadlineMs = startedMs + options.durationMs;
    const bodyOf = (index: number, n: number): string => {
      const text = messageText(options.messageBytes, index, n);
      const message = options.clientTokenCount
        ? { role: 'user', parts: [{ type: 'text', text }], token_count: Math.ceil(text.length / 4) }
        : { role: 'user', parts: [{ type: 'text', text }] };
      return JSON.stringify({ message });
    };
    /** A 201 whose body carries the new seq is the only success. */
    const record = (status: number, body: string, start: bigint): void => {
      if (status === 201 && /"seq":\d+/.test(body)) {
        ok++;
        recordSince(histogram, start);
      } else {
        errors++;
      }
    };
    const undiciClient = async (index: number): Promise<void> => {
      const path = `/v1/contexts/${encodeURIComponent(ids[index]!)}/messages`;
      for (let n = 0; performance.now() < deadlineMs; n++) {
        const body = bodyOf(index, n);
        const start = process.hrtime.bigint();
        try {
          const response = await pool.request({ path, method: 'POST', headers, body });
          record(response.statusCode, await response.body.text(), start);
        } catch {
          errors++;
        }
      }
    };
    const rawClient = async (index: number): Promise<void> => {
      const path = `/v1/contexts/${encodeURIComponent(ids[index]!)}/messages`;
      let connection = connections[index];
      try {
        for (let n = 0; performance.now() < deadlineMs; n++) {
          const body = bodyOf(index, n);
          const start = process.hrtime.bigint();
          try {
            connection ??= await RawHttpConnection.open(options.url);
            const response = await connection.request('POST', path, headers, body);
            record(response.status, response.body, start);
          } catch {
            errors++;
            connection?.close();
            connection = undefined;
          }
        }
      } finally {
        connection?.close();
      }
    };
    const client = options.client === 'undici' ? undiciClient : rawClient;
    await Promise.all(ids.map((_, i) => client(i)));
    const elapsedS = (performance.now() - startedMs) / 1000;
    return {
      ops_per_s: round(ok / elapsedS, 0),
      p50_ms: percentileMs(histogram, 50),
      p99_ms: percentileMs(histogram, 99),
      errors,
    };
  } finally {
    await pool.close();
  }
};
