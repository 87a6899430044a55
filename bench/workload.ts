// The data the scenarios write: English-like message text of a chosen size, append bodies, context
// creation, and the request builders the load engine sends.
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchRequest } from './load.js';

const words =
  'the quick brown fox jumps over a lazy dog while models read context windows of chat history'.split(' ');

/** Deterministic English-like text of about `bytes` bytes, different per (client, n). */
export const messageText = (bytes: number, client: number, n: number): string => {
  let text = `client ${client} message ${n}:`;
  for (let i = 0; text.length < bytes; i++) text += ` ${words[(client * 7 + n * 3 + i) % words.length]}`;
  return text.slice(0, bytes);
};

export const appendBody = (bytes: number, client: number, n: number, clientTokenCount: boolean): string => {
  const text = messageText(bytes, client, n);
  const message = clientTokenCount
    ? {
        role: n % 2 === 0 ? 'user' : 'assistant',
        parts: [{ type: 'text', text }],
        token_count: Math.ceil(text.length / 4),
      }
    : { role: n % 2 === 0 ? 'user' : 'assistant', parts: [{ type: 'text', text }] };
  return JSON.stringify({ message });
};

/** A 201 whose body carries the new seq is the only successful append. */
export const appendAccepted = (status: number, body: string): boolean =>
  status === 201 && /"seq":\d+/.test(body);

export const appendRequest = (id: string, body: string): BenchRequest => ({
  kind: 'append',
  method: 'POST',
  path: `/v1/contexts/${encodeURIComponent(id)}/messages`,
  body,
  ok: appendAccepted,
});

/** Creates the contexts (idempotent PUT), `concurrency` at a time, spread over the targets; retries 503s. */
export const createContexts = async (
  targets: readonly string[],
  headers: Readonly<Record<string, string>>,
  ids: readonly string[],
  concurrency = 32,
): Promise<void> => {
  const body = JSON.stringify({
    token_budget: 1_000_000,
    policy: { strategy: 'last_n', config: { limit: 200 } },
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < ids.length; index = next++) {
      const id = ids[index] as string;
      for (let attempt = 0; ; attempt++) {
        const target = targets[(index + attempt) % targets.length] as string;
        let status = 0;
        try {
          const response = await fetch(`${target}/v1/contexts/${encodeURIComponent(id)}`, {
            method: 'PUT',
            headers,
            body,
            signal: AbortSignal.timeout(10_000),
          });
          await response.arrayBuffer();
          status = response.status;
        } catch {
          // Refused or timed out: retried below.
        }
        if (status >= 200 && status < 300) break;
        if (status === 401 || status === 403)
          throw new Error(`PUT context: HTTP ${status} (check --api-key)`);
        if (attempt >= 50) throw new Error(`PUT context ${id}: HTTP ${status || 'no answer'}`);
        await sleep(100);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
};
