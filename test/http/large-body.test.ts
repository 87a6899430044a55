import { connect, type Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { bodySlices, largeBodyChars } from '../../src/http/exchange.js';
import { startTestServer, type TestServer } from './harness.js';

const collect = async (slices: AsyncIterable<Uint8Array>): Promise<Buffer[]> => {
  const out: Buffer[] = [];
  for await (const slice of slices) out.push(Buffer.from(slice));
  return out;
};

// Text whose characters take 1 to 4 UTF-8 bytes, with astral ones (surrogate pairs) everywhere.
const mixedText = (chars: number): string => {
  const alphabet = ['a', 'é', '中', '😀', '\n', '"'];
  let text = '';
  for (let i = 0; text.length < chars; i++) text += alphabet[(i * 7) % alphabet.length];
  return text;
};

describe('bodySlices', () => {
  it('cuts a body into UTF-8 slices that join into its exact encoding', async () => {
    const body = mixedText(10_000);
    for (const sliceChars of [1, 2, 3, 7, 256, 9_999, 20_000]) {
      const slices = await collect(bodySlices(body, sliceChars));
      expect(Buffer.concat(slices).equals(Buffer.from(body, 'utf8'))).toBe(true);
    }
  });

  it('never ends a slice between the halves of a surrogate pair', async () => {
    // '😀' is two UTF-16 units: a cut after the first would encode each half as U+FFFD.
    const body = 'a😀b😀😀c';
    const slices = await collect(bodySlices(body, 2));
    for (const slice of slices) expect(slice.toString('utf8')).not.toContain('\ufffd');
    expect(Buffer.concat(slices).toString('utf8')).toBe(body);
  });
});

describe('large bodies over HTTP', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('arrive whole, with their status and content type, when sent in slices', async () => {
    const body = mixedText(largeBodyChars * 3 + 17);
    server = await startTestServer({
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body }),
    });
    const response = await fetch(`${server.base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(await response.text()).toBe(body);
    // The connection stays usable for the next request.
    const again = await fetch(`${server.base}/health/live`);
    expect(again.status).toBe(200);
  });

  it('leave small bodies whole, with a Content-Length', async () => {
    server = await startTestServer({
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fastpaca_up 1\n' }),
    });
    const response = await fetch(`${server.base}/metrics`);
    expect(response.headers.get('content-length')).toBe('14');
    expect(await response.text()).toBe('fastpaca_up 1\n');
  });

  it("hold the node's buffered-bytes budget until read: past it, 503 overloaded", async () => {
    // Larger than what the kernel's socket buffers take from a client that reads nothing.
    const body = mixedText(10_000).repeat(400);
    server = await startTestServer({
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body }),
      load: { inflightRequestsMax: 100, bufferedBytesMax: 64 * 1024, bodyTimeoutMs: 30_000 },
    });
    const { port, base } = server;
    // A client that asks and reads nothing: its answer is larger than the whole budget, and is
    // still sent (alone), holding the budget while it waits.
    const reader: Socket = await new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket));
      socket.on('error', reject);
      socket.setTimeout(20_000, () => socket.destroy());
    });
    reader.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    reader.pause();
    // Bounded wait until the first answer holds the budget (the next one is then refused).
    let refused: Response | undefined;
    for (let attempt = 0; attempt < 100 && refused === undefined; attempt++) {
      const response = await fetch(`${base}/metrics`);
      if (response.status === 503) refused = response;
      else await response.arrayBuffer();
    }
    expect(refused?.status).toBe(503);
    expect(refused?.headers.get('retry-after')).toBe('1');
    expect(((await refused?.json()) as { error: string }).error).toBe('overloaded');
    // The reader leaves: its bytes go back to the budget, and the next client gets the body.
    reader.destroy();
    let served: string | undefined;
    for (let attempt = 0; attempt < 100 && served === undefined; attempt++) {
      const response = await fetch(`${base}/metrics`);
      if (response.status === 200) served = await response.text();
      else {
        await response.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(served).toBe(body);
  });
});
