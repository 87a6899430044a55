// Starts the real gateway on 127.0.0.1:0 in front of a FakeContextService, with a capturing logger
// and request observer, for tests that talk to it with global fetch.

import type { Readiness } from '../../src/api/service.js';
import type { HttpServer, HttpServerOptions } from '../../src/http/server.js';
import { startHttpServer } from '../../src/http/server.js';
import { FakeContextService } from './fake-service.js';

export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error';
  readonly object: object;
  readonly message: string | undefined;
}

export interface TestServer {
  readonly base: string;
  readonly port: number;
  readonly service: FakeContextService;
  readonly logs: LogEntry[];
  readonly observed: { route: string; status: number }[];
  /** Mutable so a test can flip readiness (unless the test replaced the readiness callback). */
  readiness: Readiness;
  close(): Promise<void>;
}

export const startTestServer = async (
  overrides: Partial<Omit<HttpServerOptions, 'service' | 'logger'>> = {},
): Promise<TestServer> => {
  const service = new FakeContextService();
  const logs: LogEntry[] = [];
  const observed: { route: string; status: number }[] = [];
  const log =
    (level: LogEntry['level']) =>
    (object: object, message?: string): void => {
      logs.push({ level, object, message });
    };
  const state: { readiness: Readiness } = { readiness: { ready: true } };
  const server: HttpServer = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    service,
    readiness: () => state.readiness,
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fastpaca_up 1\n' }),
    apiKeys: [],
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    onRequest: (route, status) => observed.push({ route, status }),
    ...overrides,
  });
  return {
    base: `http://127.0.0.1:${server.port}`,
    port: server.port,
    service,
    logs,
    observed,
    get readiness() {
      return state.readiness;
    },
    set readiness(value: Readiness) {
      state.readiness = value;
    },
    close: () => server.close(),
  };
};

export interface JsonResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON, or undefined for an empty body. */
  readonly body: unknown;
  readonly text: string;
}

/** fetch with a JSON body (unless `rawBody` is given), returning the parsed answer. */
export const call = async (
  base: string,
  method: string,
  path: string,
  options: { json?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse> => {
  const hasBody = options.json !== undefined || options.rawBody !== undefined;
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...options.headers },
    ...(hasBody ? { body: options.rawBody ?? JSON.stringify(options.json) } : {}),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
    text,
  };
};
