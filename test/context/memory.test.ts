// What the context state machine keeps in memory is bounded by configuration, not by history: an
// LRU of decoded context records, and applied writes only until the host reports them durable.

import { describe, expect, it } from 'vitest';
import { LruCache } from '../../src/context/lru-cache.js';
import { stamp, World } from './world.js';

describe('LruCache', () => {
  it('holds at most its capacity, evicting the least recently used', () => {
    const cache = new LruCache<string, number>(3);
    for (const [index, key] of ['a', 'b', 'c'].entries()) cache.set(key, index);
    expect(cache.get('a')).toBe(0); // a is now the most recent
    cache.set('d', 3);
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([0, 2, 3]);
    cache.deleteWhere((value) => value >= 2);
    expect(cache.size).toBe(1);
    expect(() => new LruCache(0)).toThrow(RangeError);
  });
});

describe('context state machine memory', () => {
  it('serves many more contexts than it caches, reading the rest back from the store', async () => {
    const world = new World({ groupCount: 4, cacheContextsMax: 2 });
    const ids = Array.from({ length: 40 }, (_, index) => `ctx-${index}`);
    let n = 0;
    for (const contextId of ids) {
      await world.run({
        type: 'put_context',
        contextId,
        now: stamp(++n),
        changes: { token_budget: 1_000 },
        defaults: { triggerRatio: 0.7, policy: { strategy: 'last_n', config: { limit: 200 } } },
      });
    }
    for (let round = 1; round <= 3; round++) {
      for (const contextId of ids) {
        const result = await world.run({
          type: 'append',
          contextId,
          now: stamp(++n),
          message: {
            role: 'user',
            parts: [{ type: 'text', text: contextId }],
            tokenCount: 1,
            partTokens: [1],
          },
        });
        expect(result).toMatchObject({ seq: round, version: round });
      }
    }
    for (const contextId of ids) {
      expect(await world.getContext(contextId)).toMatchObject({ last_seq: 3, version: 3 });
      expect((await world.tail(contextId, 10, 0)).map((message) => message.parts[0])).toEqual(
        Array.from({ length: 3 }, () => ({ type: 'text', text: contextId })),
      );
    }
  });

  it('keeps applied writes only until they are durable', async () => {
    const world = new World({ deferPersist: true });
    await world.run({
      type: 'put_context',
      contextId: 'ctx-a',
      now: stamp(0),
      changes: { token_budget: 1_000 },
      defaults: { triggerRatio: 0.7, policy: { strategy: 'last_n', config: { limit: 200 } } },
    });
    for (let i = 1; i <= 50; i++) {
      await world.run({
        type: 'append',
        contextId: 'ctx-a',
        now: stamp(i),
        message: { role: 'user', parts: [{ type: 'text', text: `m${i}` }], tokenCount: 1, partTokens: [1] },
      });
    }
    // Held back: 50 message records plus the context's own records, all readable from the overlay.
    expect(world.sm.dirtyKeys()).toBeGreaterThanOrEqual(50);
    expect((await world.messages('ctx-a', 0, 100))?.messages).toHaveLength(50);
    world.host.flush();
    expect(world.sm.dirtyKeys()).toBe(0);
    expect((await world.messages('ctx-a', 0, 100))?.messages).toHaveLength(50);
  });
});
