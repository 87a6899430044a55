// The load engine every HTTP scenario uses: `connections` keep-alive connections (bench/raw-http.ts,
// a lean client that leaves the shared CPU to the node), spread round-robin over the targets, each
// issuing the scenario's next request until the duration or the total count is reached. Closed loop
// by default (each connection sends as soon as it has its answer); with `rate`, open loop at that
// many requests/s over all connections, and latency counts from the instant a request was due, so a
// stalled server shows as latency instead of hiding as fewer requests (coordinated omission).
import { setTimeout as sleep } from 'node:timers/promises';
import { RawHttpConnection } from './raw-http.js';
import type { LatencyRecorder } from './recorder.js';

export interface BenchRequest {
  /** Which histogram the latency goes to ("append", "window", "tail", ...). */
  readonly kind: string;
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly path: string;
  readonly body?: string;
  /** Whether the answer is a success; default: status 200-299. */
  readonly ok?: (status: number, body: string) => boolean;
}

export interface LoadOptions {
  readonly targets: readonly string[];
  readonly connections: number;
  /** Stop after this long (ms) ... */
  readonly durationMs?: number;
  /** ... or after this many requests in all (whichever comes first). */
  readonly count?: number;
  /** Requests per second over all connections (open loop); unset: closed loop. */
  readonly rate?: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The request connection `index` sends as its `n`th. */
  readonly next: (index: number, n: number) => BenchRequest;
  readonly recorder: LatencyRecorder;
  /** Polled between requests: true stops the run early. */
  readonly stop?: () => boolean;
}

export const runLoad = async (options: LoadOptions): Promise<void> => {
  if (options.durationMs === undefined && options.count === undefined) {
    throw new Error('a load needs a duration or a count');
  }
  const startedMs = performance.now();
  const deadlineMs = startedMs + (options.durationMs ?? Number.POSITIVE_INFINITY);
  let issued = 0;
  const more = (): boolean =>
    performance.now() < deadlineMs &&
    (options.count === undefined || issued < options.count) &&
    !(options.stop?.() ?? false);
  const intervalMs = options.rate === undefined ? 0 : (options.connections * 1000) / options.rate;

  const client = async (index: number): Promise<void> => {
    let connection: RawHttpConnection | undefined;
    let attempt = 0;
    let dueMs = startedMs + (intervalMs * index) / options.connections;
    try {
      for (let n = 0; more(); n++) {
        if (intervalMs > 0) {
          const waitMs = dueMs - performance.now();
          if (waitMs > 0) await sleep(waitMs);
          if (!more()) break;
          // The server closes a keep-alive connection idle too long: that is no failed request.
          if (connection?.usable === false) connection = undefined;
        }
        issued++;
        const request = options.next(index, n);
        const startMs = intervalMs > 0 ? dueMs : performance.now();
        dueMs += intervalMs;
        try {
          const target = options.targets[(index + attempt) % options.targets.length] as string;
          connection ??= await RawHttpConnection.open(target);
          const response = await connection.request(
            request.method,
            request.path,
            options.headers,
            request.body ?? '',
          );
          const ok =
            request.ok?.(response.status, response.body) ?? (response.status >= 200 && response.status < 300);
          if (ok) options.recorder.record(request.kind, (performance.now() - startMs) * 1e6);
          else options.recorder.error(request.kind);
        } catch {
          options.recorder.error(request.kind);
          connection?.close();
          connection = undefined;
          // Next time, the next target: a dead node is left behind.
          attempt++;
          await sleep(10);
        }
      }
    } finally {
      connection?.close();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, (_, index) => client(index)));
};
