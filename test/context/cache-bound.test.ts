// The context cache is bounded by both of its configured limits, contexts and estimated bytes,
// however many distinct contexts pass through it: before this bound, `cache.bytes_max` was
// documented but ignored, so a node with large metadata per context could cache up to
// `cache.contexts_max` (100,000) of them whatever they weighed.

import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';
import {
  cachedContextBaseBytes,
  cachedContextBytes,
  jsonHeapFactor,
} from '../../src/context/cache-weight.js';
import { InMemoryConsensusHost } from '../../src/context/in-memory-consensus.js';
import { LruCache } from '../../src/context/lru-cache.js';
import { initialWindow } from '../../src/context/records.js';
import type { ContextRecord } from '../../src/context/records.js';
import { ContextStateMachine } from '../../src/context/state-machine.js';
import { groupOf } from '../../src/context/routing.js';
import { stamp } from './world.js';

describe('LruCache weight bound', () => {
  const weighted = (max: number, capacity = 100): LruCache<string, number> =>
    new LruCache<string, number>(capacity, { max, weigh: (value) => value });

  it('evicts the least recently used entries once the total weight passes the limit', () => {
    const cache = weighted(10);
    cache.set('a', 4);
    cache.set('b', 4);
    expect(cache.get('a')).toBe(4); // b is now the oldest
    cache.set('c', 4);
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c')]).toEqual([4, 4]);
    expect(cache.weight).toBe(8);
  });

  it('does not keep a value heavier than the whole limit', () => {
    const cache = weighted(10);
    cache.set('a', 3);
    cache.set('huge', 11);
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.weight).toBe(0);
  });

  it('keeps its weight exact through replacement, delete and deleteWhere', () => {
    const cache = weighted(100);
    cache.set('a', 5);
    cache.set('a', 7);
    cache.set('b', 11);
    cache.set('c', 13);
    expect(cache.weight).toBe(31);
    cache.delete('b');
    cache.delete('missing');
    expect(cache.weight).toBe(20);
    cache.deleteWhere((value) => value > 10);
    expect(cache.weight).toBe(7);
    expect(cache.size).toBe(1);
  });

  it('still holds at most its capacity of entries', () => {
    const cache = weighted(1_000, 3);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, 1);
    expect(cache.size).toBe(3);
    expect(cache.weight).toBe(3);
  });

  it('refuses a limit that is not positive', () => {
    expect(() => weighted(0)).toThrow(RangeError);
  });
});

describe('cached context weight', () => {
  const context = (metadata: ContextRecord['metadata']): ContextRecord => ({
    status: 'active',
    tokenBudget: 1_000,
    triggerRatio: 0.7,
    policy: { strategy: 'last_n', config: { limit: 200 } },
    metadata,
    createdAt: stamp(0),
    updatedAt: stamp(0),
    eventCount: 0,
  });

  it('grows with the client JSON a context carries', () => {
    const small = cachedContextBytes('ctx', { context: context({}), window: initialWindow() });
    const metadata = { notes: 'x'.repeat(10_000) };
    const large = cachedContextBytes('ctx', { context: context(metadata), window: initialWindow() });
    expect(small).toBeGreaterThanOrEqual(cachedContextBaseBytes);
    // `{}` (2 characters) was replaced by the metadata
    expect(large - small).toBeGreaterThanOrEqual(jsonHeapFactor * (JSON.stringify(metadata).length - 2));
  });
});

describe('context state machine cache', () => {
  const groupCount = 4;
  const policy = { strategy: 'last_n' as const, config: { limit: 200 } };

  const drive = async (
    sm: ContextStateMachine,
    contexts: number,
    metadataBytes: number,
  ): Promise<{ readonly host: InMemoryConsensusHost; readonly run: (command: Command) => Promise<void> }> => {
    const host = new InMemoryConsensusHost({ stateMachine: sm, groupCount, deferPersist: false });
    const run = async (command: Command): Promise<void> => {
      const outcome = await host.propose(groupOf(command.contextId, groupCount), encodeCommand(command));
      if (!outcome.ok) throw new Error(`proposal failed: ${outcome.code}`);
    };
    let n = 0;
    for (let c = 0; c < contexts; c++) {
      const contextId = `ctx-${c}`;
      await run({
        type: 'put_context',
        contextId,
        now: stamp(++n),
        changes: { token_budget: 1_000, metadata: { owner: contextId, notes: 'm'.repeat(metadataBytes) } },
        defaults: { triggerRatio: 0.7, policy },
      });
      await run({
        type: 'append',
        contextId,
        now: stamp(++n),
        message: { role: 'user', parts: [{ type: 'text', text: 'hi' }], tokenCount: 1, partTokens: [1] },
      });
    }
    return { host, run };
  };

  it('stays within its byte bound after many distinct contexts, and still serves all of them', async () => {
    const cacheBytesMax = 200_000; // ~10 contexts with 4 KiB of metadata each
    const sm = new ContextStateMachine({ cacheContextsMax: 100_000, cacheBytesMax });
    const { host } = await drive(sm, 300, 4_096);
    const stats = sm.cacheStats();
    expect(stats.bytes).toBeLessThanOrEqual(cacheBytesMax);
    expect(stats.contexts).toBeGreaterThan(0);
    expect(stats.contexts).toBeLessThan(20);
    for (const c of [0, 150, 299]) {
      const contextId = `ctx-${c}`;
      const view = await sm.getContext(
        groupOf(contextId, groupCount),
        host.groupKv(groupOf(contextId, groupCount)),
        contextId,
      );
      expect(view).toMatchObject({ last_seq: 1, version: 1, metadata: { owner: contextId } });
    }
  });

  it('stays within its context bound when entries are light', async () => {
    const sm = new ContextStateMachine({ cacheContextsMax: 25, cacheBytesMax: 1e9 });
    await drive(sm, 200, 0);
    expect(sm.cacheStats().contexts).toBe(25);
  });
});
