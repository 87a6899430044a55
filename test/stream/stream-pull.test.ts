// The hosting node's side of a pull (a subscriber on a node without a replica) against a scripted
// store: a later pull that a trim overtook gets a gap (not a silent skip), a gap the replay meets
// after some events ends the page before it and opens the next one, and a replay a trim overtook is
// read again.

import { describe, expect, it } from 'vitest';

import type { ContextService } from '../../src/api/service.js';
import type { ContextEvent } from '../../src/context/events.js';
import { createPullTarget } from '../../src/stream/stream-pull.js';
import { HistoryTrimmedError } from '../../src/stream/stream-store.js';
import type { ReplayItem, StreamPosition, StreamStore } from '../../src/stream/stream-store.js';

const message = (version: number): ContextEvent => ({
  type: 'message',
  version,
  seq: version,
  message: {
    id: `c:${version}`,
    seq: version,
    role: 'user',
    parts: [],
    metadata: {},
    token_count: 1,
    inserted_at: '2026-01-01T00:00:00.000Z',
  },
});

const position = (version: number, retainedFromVersion = 1): StreamPosition => ({
  version,
  lastSeq: version,
  eventCount: 0,
  tombstoned: false,
  trimmedThroughSeq: retainedFromVersion - 1,
  retainedFromVersion,
});

const service = { getContext: async () => ({}) } as unknown as ContextService;

const store = (
  at: StreamPosition,
  replay: (after: number) => AsyncIterable<readonly ReplayItem[]>,
): StreamStore => ({
  groupOf: () => 0,
  position: async () => at,
  replay: (_id, _at, after) => replay(after.version),
});

const versionsFrom = async function* (from: number, to: number): AsyncGenerator<ReplayItem[]> {
  for (let version = from; version <= to; version++) yield [{ event: message(version) }];
};

const nextEvent = () => Promise.resolve();

describe('answering pulls of a node without a replica', () => {
  it('gives a later pull that a trim overtook a gap, then the history from actual', async () => {
    const at = position(12, 10);
    const pull = createPullTarget(
      { store: store(at, (after) => versionsFrom(Math.max(after + 1, 10), 12)), nextEvent },
      service,
    );
    // The subscriber had versions up to 3 from an earlier answer; the store now starts at 10.
    const answer = await pull('c', { after: { version: 3, ordinal: 0 }, waitMs: 0, eventsMax: 100 });
    expect(answer.gap).toEqual({ expected: 4, actual: 10 });
    expect(answer.events.map((event) => event.version)).toEqual([10, 11, 12]);
  });

  it('ends a page before a gap the replay meets and opens the next page with it', async () => {
    const at = position(8);
    const replay = async function* (after: number): AsyncGenerator<ReplayItem[]> {
      if (after < 2) yield [{ event: message(1) }, { event: message(2) }];
      yield [{ gap: { expected: 3, actual: 6 } }];
      yield* versionsFrom(6, 8);
    };
    const pull = createPullTarget({ store: store(at, replay), nextEvent }, service);
    const first = await pull('c', { after: { version: 0 }, waitMs: 0, eventsMax: 100 });
    expect(first.gap).toBeUndefined();
    expect(first.events.map((event) => event.version)).toEqual([1, 2]);
    const second = await pull('c', { after: first.next, waitMs: 0, eventsMax: 100 });
    expect(second.gap).toEqual({ expected: 3, actual: 6 });
    expect(second.events.map((event) => event.version)).toEqual([6, 7, 8]);
  });

  it('reads again when a trim overtook the read', async () => {
    let reads = 0;
    const replay = async function* (after: number): AsyncGenerator<ReplayItem[]> {
      reads += 1;
      if (reads === 1) throw new HistoryTrimmedError('message 1 left the store');
      yield* versionsFrom(after + 1, 4);
    };
    const pull = createPullTarget({ store: store(position(4), replay), nextEvent }, service);
    const answer = await pull('c', { after: { version: 0 }, waitMs: 0, eventsMax: 100 });
    expect(reads).toBe(2);
    expect(answer.events.map((event) => event.version)).toEqual([1, 2, 3, 4]);
  });
});
