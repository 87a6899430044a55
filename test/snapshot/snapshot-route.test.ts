// The snapshot endpoint against careless clients: at most two snapshots stream at once (each pins
// LevelDB's files), a third gets 503 overloaded with Retry-After; a client that stops reading is cut
// off after the stall timeout, which frees its slot; a client that reads gets the whole file.

import { connect, type Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { SnapshotParser } from '../../src/snapshot/format.js';
import { registerSnapshotRoute, snapshotPath } from '../../src/snapshot/snapshot-route.js';
import { FakeContextService } from '../http/fake-service.js';

/** 4,000 pairs of 4 KiB: 16 MiB, far more than socket buffers hold for a client that never reads. */
const store = {
  iterate: () =>
    (async function* () {
      for (let i = 0; i < 4_000; i += 1) {
        const key = Buffer.alloc(8);
        key.writeUInt32BE(i, 4);
        yield [key, Buffer.alloc(4_096, i % 251)] as const;
      }
    })(),
};

const silent = (): void => undefined;

/** Sends the GET and never reads. */
const stalledClient = (port: number): Socket => {
  const socket = connect(port, '127.0.0.1');
  socket.write(`GET ${snapshotPath} HTTP/1.1\r\nHost: x\r\n\r\n`);
  socket.pause();
  return socket;
};

describe('the snapshot endpoint', () => {
  let server: HttpServer | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await server?.close();
    server = undefined;
  });

  it('streams two at once, refuses a third, and cuts off a client that stops reading', async () => {
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      service: new FakeContextService(),
      readiness: () => ({ ready: true }),
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      apiKeys: [],
      logger: { info: silent, warn: silent, error: silent },
      closeTimeoutMs: 1_000,
      extend: (app, gateway) =>
        registerSnapshotRoute(app, gateway, {
          store,
          nodeId: 'n1',
          clustered: false,
          logger: { info: silent },
          stallTimeoutMs: 1_000,
        }),
    });
    const base = `http://127.0.0.1:${server.port}`;
    const first = stalledClient(server.port);
    const second = stalledClient(server.port);
    sockets.push(first, second);
    await new Promise((resolve) => setTimeout(resolve, 300));

    const third = await fetch(`${base}${snapshotPath}`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('10');
    expect(await third.json()).toMatchObject({ error: 'overloaded' });

    // The stalled clients are cut off after the stall timeout, which frees their slots: a reading
    // client is served again (bounded wait; 503 while the slots are held).
    let whole: Response | undefined;
    for (let attempt = 0; attempt < 40 && whole === undefined; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const answer = await fetch(`${base}${snapshotPath}`);
      if (answer.status === 200) whole = answer;
      else await answer.arrayBuffer();
    }
    expect(whole?.status).toBe(200);
    let pairs = 0;
    const parser = new SnapshotParser(() => (pairs += 1));
    parser.push(new Uint8Array(await (whole as Response).arrayBuffer()));
    expect(parser.finish().pairs).toBe(4_000);
    expect(pairs).toBe(4_000);
  }, 30_000);
});
