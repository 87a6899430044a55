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
});
