import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ScrapeCoalescer } from '../../src/telemetry/scrape-coalescer.js';

/** A render that counts itself and returns what the "registry" holds when it starts. */
const counter = (): { state: { value: number; renders: number }; render: () => Promise<number> } => {
  const state = { value: 0, renders: 0 };
  return {
    state,
    render: async () => {
      state.renders += 1;
      return state.value;
    },
  };
};

describe('ScrapeCoalescer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers scrapes of one pass of the loop with one render', async () => {
    const { state, render } = counter();
    const coalescer = new ScrapeCoalescer({ render, minIntervalMs: 100, now: () => Date.now() });
    const scrapes = Array.from({ length: 50 }, () => coalescer.scrape());
    await vi.advanceTimersByTimeAsync(0);
    expect(await Promise.all(scrapes)).toEqual(Array.from({ length: 50 }, () => 0));
    expect(state.renders).toBe(1);
  });

  it('bounds renders under a flood to one per interval', async () => {
    const { state, render } = counter();
    const coalescer = new ScrapeCoalescer({ render, minIntervalMs: 100, now: () => Date.now() });
    let answered = 0;
    // A scraper that asks again as soon as it is answered, 16 times over, for one second.
    let flooding = true;
    const loops = Array.from({ length: 16 }, async () => {
      while (flooding) {
        await coalescer.scrape();
        answered += 1;
      }
    });
    await vi.advanceTimersByTimeAsync(1_000);
    flooding = false;
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all(loops);
    expect(answered).toBeGreaterThanOrEqual(16 * 10);
    // Starts at 0, 100, ..., 1000 (and one more for the loops' last asks): never more often.
    expect(state.renders).toBeGreaterThanOrEqual(10);
    expect(state.renders).toBeLessThanOrEqual(13);
  });

  it('never answers a scrape with a render that started before it arrived', async () => {
    const { state, render } = counter();
    const coalescer = new ScrapeCoalescer({ render, minIntervalMs: 100, now: () => Date.now() });
    const first = coalescer.scrape();
    await vi.advanceTimersByTimeAsync(0);
    expect(await first).toBe(0);
    // Something happens right after the render (an append): the next scrape must see it, even
    // though it has to wait for the interval to pass.
    state.value = 1;
    const second = coalescer.scrape();
    let settled = false;
    void second.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(60);
    expect(await second).toBe(1);
    expect(state.renders).toBe(2);
  });

  it('renders at once when the last render is older than the interval', async () => {
    const { state, render } = counter();
    const coalescer = new ScrapeCoalescer({ render, minIntervalMs: 100, now: () => Date.now() });
    await Promise.all([coalescer.scrape(), vi.advanceTimersByTimeAsync(0)]);
    await vi.advanceTimersByTimeAsync(500);
    const later = coalescer.scrape();
    await vi.advanceTimersByTimeAsync(0);
    expect(await later).toBe(0);
    expect(state.renders).toBe(2);
  });

  it('hands a failed render to its scrapes and renders again for the next ones', async () => {
    let fail = true;
    let renders = 0;
    const coalescer = new ScrapeCoalescer({
      minIntervalMs: 100,
      now: () => Date.now(),
      render: () => {
        renders += 1;
        if (fail) throw new Error('collector failed');
        return Promise.resolve('text');
      },
    });
    const failed = coalescer.scrape();
    const caught = failed.catch((error: unknown) => (error as Error).message);
    await vi.advanceTimersByTimeAsync(0);
    expect(await caught).toBe('collector failed');
    fail = false;
    const next = coalescer.scrape();
    await vi.advanceTimersByTimeAsync(100);
    expect(await next).toBe('text');
    expect(renders).toBe(2);
  });
});
