// Starts a real node in this process (real LevelDB in a temp dir, real Raft host and gRPC listener,
// real uWebSockets.js HTTP on an ephemeral port) and talks to it over HTTP with fetch.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig } from '../../src/config/load-config.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startNode, type RunningNode } from '../../src/node/node.js';

export interface TestNode {
  readonly node: RunningNode;
  readonly base: string;
  readonly dataDir: string;
  readonly fatalErrors: Error[];
  /** Closes the node; the data directory stays for a restart. */
  stop(): Promise<void>;
  /** Closes the node and removes its data directory. */
  destroy(): Promise<void>;
}

export interface TestNodeOptions {
  readonly dataDir?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Replaces the data directory's free-space probe (a simulated filling disk). */
  readonly diskFreeBytes?: (dir: string) => Promise<number>;
  /** Seconds; bounded wait for every group to elect itself. */
  readonly readyTimeoutMs?: number;
}

export const startTestNode = async (options: TestNodeOptions = {}): Promise<TestNode> => {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'fastpaca-e2e-'));
  const { config } = loadConfig({
    env: {
      PORT: '0',
      FASTPACA_RAFT_PORT: '0',
      FASTPACA_HOST: '127.0.0.1',
      FASTPACA_RAFT_DATA_DIR: dataDir,
      FASTPACA_TOKEN_ESTIMATOR: 'chars4',
      FASTPACA_TOKENIZER_WORKERS: '1',
      FASTPACA_LOG_LEVEL: 'warn',
      ...options.env,
    },
  });
  const fatalErrors: Error[] = [];
  const logger = createLogger({ level: config.logLevel });
  const node = await startNode(config, logger, {
    onFatal: (error) => fatalErrors.push(error),
    ...(options.diskFreeBytes === undefined ? {} : { diskFreeBytes: options.diskFreeBytes }),
  });
  const base = `http://127.0.0.1:${node.httpPort}`;
  await waitReady(base, options.readyTimeoutMs ?? 10_000);
  return {
    node,
    base,
    dataDir,
    fatalErrors,
    stop: () => node.close(),
    destroy: async () => {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

export const waitReady = async (base: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(`${base}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${base} not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** One HTTP call with a JSON body (or raw text), answering the parsed JSON body (or the text). */
export const call = async (
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> => {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
};
