// The gateway's part of a graceful shutdown: once drained, new /v1 requests get 503 shutting_down
// with Retry-After (so clients retry on another node) while health, metrics and requests already in
// flight are served; close() then waits for those in flight.

import { afterEach, describe, expect, it } from 'vitest';

import type { ContextView } from '../../src/api/domain.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { FakeContextService } from './fake-service.js';
import { call } from './harness.js';

/** getContext waits until released: a request held in flight. */
class HeldService extends FakeContextService {
  private release: (() => void) | undefined;
  readonly entered: Promise<void>;
  private signalEntered: () => void = () => undefined;

  constructor() {
    super();
    this.entered = new Promise((resolve) => (this.signalEntered = resolve));
  }

  override async getContext(id: string): Promise<ContextView> {
    this.signalEntered();
    await new Promise<void>((resolve) => (this.release = resolve));
    return super.getContext(id);
  }

  releaseAll(): void {
    this.release?.();
  }
}

describe('draining the gateway', () => {
  let server: HttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('refuses new /v1 requests with 503 shutting_down and Retry-After, serves health and requests in flight', async () => {
    const service = new HeldService();
    const silent = (): void => undefined;
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      service,
      readiness: () => ({ ready: true }),
      metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'fastpaca_up 1\n' }),
      apiKeys: [],
      logger: { info: silent, warn: silent, error: silent },
      closeTimeoutMs: 5_000,
    });
    const base = `http://127.0.0.1:${server.port}`;
    const created = await call(base, 'PUT', '/v1/contexts/held', { json: { token_budget: 1000 } });
    expect(created.status).toBe(201);

    const writesBefore = service.writes;
    const inFlight = call(base, 'GET', '/v1/contexts/held');
    await service.entered;
    server.drain();

    const refused = await call(base, 'POST', '/v1/contexts/held/messages', {
      json: { message: { role: 'user', parts: [{ type: 'text', text: 'late' }] } },
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'shutting_down' });
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(service.writes).toBe(writesBefore);
    expect((await call(base, 'GET', '/health/live')).status).toBe(200);
    const metrics = await fetch(`${base}/metrics`);
    await metrics.arrayBuffer();
    expect(metrics.status).toBe(200);

    const closing = server.close();
    service.releaseAll();
    const answered = await inFlight;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ id: 'held' });
    await closing;
  });
});
