// Helpers of the contract tests (test/e2e/contract-*.test.ts): a small client bound to one node's
// base URL, message builders, the chars4 rule as the contract states it (the oracle the server's
// counts are checked against), and assertions of the contract's exact status codes and bodies.

import { expect } from 'vitest';

import type { ContextView, LlmContextView, MessagesPage, StoredMessage } from '../../src/api/domain.js';
import { call, type JsonResponse } from './node-harness.js';

/** A wire message as a client sends it (looser than the domain type: tests send odd values too). */
export interface WireMessage {
  readonly role?: unknown;
  readonly parts?: unknown;
  readonly metadata?: unknown;
  readonly token_count?: unknown;
  readonly id?: unknown;
  readonly [extra: string]: unknown;
}

export interface AppendOptions {
  readonly ifVersion?: number;
  readonly idempotencyKey?: string;
}

export interface AppendBody {
  readonly seq: number;
  readonly version: number;
  readonly token_estimate: number;
}

export interface ErrorBody {
  readonly error: string;
  readonly message: string;
}

let sequence = 0;

/** A context id no other test (or earlier run against a reused data dir) uses. */
export const uniqueId = (prefix: string): string =>
  `${prefix}-${process.pid}-${Date.now().toString(36)}-${(sequence++).toString(36)}`;

export const contextPath = (id: string, suffix = ''): string =>
  `/v1/contexts/${encodeURIComponent(id)}${suffix}`;

/** A one-part text message. */
export const textMessage = (text: string, extra: Partial<WireMessage> = {}): WireMessage => ({
  role: 'user',
  parts: [{ type: 'text', text }],
  ...extra,
});

/** A text message whose token count the client states. */
export const countedMessage = (tokens: number, text = `message of ${tokens} tokens`): WireMessage =>
  textMessage(text, { token_count: tokens });

/** The contract's chars4: max(1, ceil(chars / 4)), chars being code points. */
export const chars4 = (text: string): number => Math.max(1, Math.ceil([...text].length / 4));

/** chars4 of one part: a text part on its text, any other part on its compact JSON. */
export const partTokens = (part: { readonly type: string; readonly [key: string]: unknown }): number =>
  chars4(part.type === 'text' && typeof part['text'] === 'string' ? part['text'] : JSON.stringify(part));

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** Thin client of one node; every method answers the raw JsonResponse so tests assert statuses. */
export class ContractClient {
  constructor(
    readonly base: string,
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {}

  call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<JsonResponse> {
    return call(this.base, method, path, body, { ...this.headers, ...headers });
  }

  putContext(id: string, body: unknown): Promise<JsonResponse> {
    return this.call('PUT', contextPath(id), body);
  }

  getContext(id: string): Promise<JsonResponse> {
    return this.call('GET', contextPath(id));
  }

  deleteContext(id: string): Promise<JsonResponse> {
    return this.call('DELETE', contextPath(id));
  }

  patchMetadata(id: string, body: unknown): Promise<JsonResponse> {
    return this.call('PATCH', contextPath(id, '/metadata'), body);
  }

  append(id: string, message: WireMessage, options: AppendOptions = {}): Promise<JsonResponse> {
    const body = options.ifVersion === undefined ? { message } : { message, if_version: options.ifVersion };
    const headers: Record<string, string> =
      options.idempotencyKey === undefined ? {} : { 'Idempotency-Key': options.idempotencyKey };
    return this.call('POST', contextPath(id, '/messages'), body, headers);
  }

  tail(id: string, query = ''): Promise<JsonResponse> {
    return this.call('GET', contextPath(id, `/tail${query === '' ? '' : `?${query}`}`));
  }

  exportMessages(id: string, query = ''): Promise<JsonResponse> {
    return this.call('GET', contextPath(id, `/messages${query === '' ? '' : `?${query}`}`));
  }

  llmContext(id: string, query = ''): Promise<JsonResponse> {
    return this.call('GET', contextPath(id, `/context${query === '' ? '' : `?${query}`}`));
  }

  compact(id: string, body: unknown): Promise<JsonResponse> {
    return this.call('POST', contextPath(id, '/compact'), body);
  }

  // --- Steps that must succeed: they assert their status and answer the typed body.

  async create(
    id: string,
    body: Readonly<Record<string, unknown>> = { token_budget: 100_000 },
  ): Promise<ContextView> {
    return expectStatus<ContextView>(await this.putContext(id, body), 201);
  }

  async appendOk(id: string, message: WireMessage, options: AppendOptions = {}): Promise<AppendBody> {
    return expectStatus<AppendBody>(await this.append(id, message, options), 201);
  }

  async contextOk(id: string): Promise<ContextView> {
    return expectStatus<ContextView>(await this.getContext(id), 200);
  }

  async tailOk(id: string, query = ''): Promise<StoredMessage[]> {
    return expectStatus<{ messages: StoredMessage[] }>(await this.tail(id, query), 200).messages;
  }

  async exportOk(id: string, query = ''): Promise<MessagesPage> {
    return expectStatus<MessagesPage>(await this.exportMessages(id, query), 200);
  }

  async windowOk(id: string, query = ''): Promise<LlmContextView> {
    return expectStatus<LlmContextView>(await this.llmContext(id, query), 200);
  }
}

/** Asserts the status (showing the body on failure) and answers the body as `T`. */
export const expectStatus = <T>(response: JsonResponse, status: number): T => {
  expect({ status: response.status, body: response.body }).toMatchObject({ status });
  return response.body as T;
};

/**
 * Asserts the contract's error shape exactly: the status, `{"error", "message"}` and nothing else,
 * a JSON content type, and optionally the message (exact string, or a pattern it must match).
 */
export const expectError = (
  response: JsonResponse,
  status: number,
  code: string,
  message?: string | RegExp,
): ErrorBody => {
  expect({ status: response.status, body: response.body }).toMatchObject({ status, body: { error: code } });
  expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  const body = response.body as ErrorBody;
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(typeof body.message).toBe('string');
  expect(body.message.length).toBeGreaterThan(0);
  if (typeof message === 'string') expect(body.message).toBe(message);
  else if (message !== undefined) expect(body.message).toMatch(message);
  return body;
};

/** The seqs of a list of stored messages. */
export const seqsOf = (messages: readonly StoredMessage[]): number[] =>
  messages.map((message) => message.seq);

/** Sum of the messages' token counts. */
export const tokensOf = (messages: readonly StoredMessage[]): number =>
  messages.reduce((sum, message) => sum + message.token_count, 0);

/** The sum of every sample of the Prometheus series `name` (all label sets), from GET /metrics. */
export const metricSum = async (base: string, name: string): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
};

/** `metricSum` once two consecutive reads agree (counters synced lazily may lag a moment); bounded. */
export const settledMetricSum = async (base: string, name: string): Promise<number> => {
  let previous = await metricSum(base, name);
  for (let attempt = 0; attempt < 50; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const current = await metricSum(base, name);
    if (current === previous) return current;
    previous = current;
  }
  throw new Error(`${name} did not settle`);
};
