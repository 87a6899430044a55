// HTTP pipelining is not supported: uWS closes a connection on which a second request arrives while
// the first one's answer is still pending. A pipelined write must then not be applied (its answer is
// lost, and a client retrying it without an idempotency key would apply it twice); requests sent one
// after another on a kept-alive connection are served as usual.
import { connect, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  // Appends answer after a short wait, like the real service's, which answers after its storage
  // did: the fake one answers within uWS's callback, before uWS parses the next pipelined request.
  const append = server.service.append.bind(server.service);
  server.service.append = async (id, request) => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    return append(id, request);
  };
});

afterAll(async () => {
  await server.close();
});

const appendRequest = (id: string, text: string): string => {
  const body = JSON.stringify({ message: { role: 'user', parts: [{ type: 'text', text }] } });
  return (
    `POST /v1/contexts/${id}/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
};

const appendsTo = (id: string): number =>
  server.service.calls.filter((entry) => entry.method === 'append' && entry.id === id).length;

/** A raw connection: everything it read so far, and whether the server closed it. */
interface Raw {
  readonly socket: Socket;
  text: string;
  closed: boolean;
  /** Resolves once `done` holds for what was read (or the connection closed), or after `ms`. */
  until(done: (raw: Raw) => boolean, ms?: number): Promise<void>;
}

const open = (): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const waiters = new Set<() => void>();
    const wake = (): void => waiters.forEach((waiter) => waiter());
    const socket = connect(server.port, '127.0.0.1', () => resolve(raw));
    const raw: Raw = {
      socket,
      text: '',
      closed: false,
      until: (done, ms = 5_000) =>
        new Promise((settle) => {
          const check = (): void => {
            if (!done(raw) && !raw.closed) return;
            clearTimeout(timer);
            waiters.delete(check);
            settle();
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            settle();
          }, ms);
          waiters.add(check);
          check();
        }),
    };
    socket.on('data', (chunk: Buffer) => {
      raw.text += chunk.toString('latin1');
      wake();
    });
    socket.on('close', () => {
      raw.closed = true;
      wake();
    });
    // A reset from the server counts as its close; before the connection is up it fails the test.
    socket.on('error', reject);
    // Bounded: every socket is closed by the test, by the server or by this timer.
    socket.setTimeout(10_000, () => socket.destroy());
  });

const statuses = (text: string): string[] =>
  [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => match[1] ?? '');

describe('HTTP pipelining', () => {
  it.each([2, 3])(
    'closes a connection with %i pipelined appends, unanswered and with none applied',
    async (count) => {
      const id = `pipelined-${count}`;
      expect(
        (await call(server.base, 'PUT', `/v1/contexts/${id}`, { json: { token_budget: 1000 } })).status,
      ).toBe(201);
      const raw = await open();
      let closedByServer = false;
      try {
        raw.socket.write(
          Array.from({ length: count }, (_, index) => appendRequest(id, `pipelined ${index}`)).join(''),
        );
        await raw.until((r) => statuses(r.text).length === count);
        closedByServer = raw.closed;
      } finally {
        raw.socket.destroy();
      }
      // An append that had started would have been applied by now (it answers after 20 ms).
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(appendsTo(id)).toBe(0);
      expect(closedByServer).toBe(true);
      expect(statuses(raw.text)).toEqual([]);
      const context = await call(server.base, 'GET', `/v1/contexts/${id}`);
      expect(context.body).toMatchObject({ version: 0 });
    },
  );

  it('serves two appends sent one after the other on one kept-alive connection', async () => {
    const id = 'sequential';
    expect(
      (await call(server.base, 'PUT', `/v1/contexts/${id}`, { json: { token_budget: 1000 } })).status,
    ).toBe(201);
    const raw = await open();
    try {
      raw.socket.write(appendRequest(id, 'first'));
      await raw.until((r) => statuses(r.text).length === 1);
      expect(statuses(raw.text)).toEqual(['201']);
      raw.socket.write(appendRequest(id, 'second'));
      await raw.until((r) => statuses(r.text).length === 2);
      expect(statuses(raw.text)).toEqual(['201', '201']);
      expect(raw.closed).toBe(false);
    } finally {
      raw.socket.destroy();
    }
    expect(appendsTo(id)).toBe(2);
    const context = await call(server.base, 'GET', `/v1/contexts/${id}`);
    expect(context.body).toMatchObject({ version: 2 });
  });
});
