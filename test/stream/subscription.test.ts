// The seam of one subscriber against a scripted store (no node): the gap frame when the cursor is
// older than what the node holds or the replay meets history it cannot read, a replay started again
// when a trim overtakes it, a 1013 close when the archive does not answer, live events held during
// the replay and sent once after it, and the bounded hold of a subscriber whose replay cannot keep up.

import { describe, expect, it } from 'vitest';

import { ServiceError } from '../../src/api/errors.js';
import type { ContextEvent } from '../../src/context/events.js';
import { StreamHub } from '../../src/stream/hub.js';
import { HistoryTrimmedError } from '../../src/stream/stream-store.js';
import type { StreamPosition, StreamStore } from '../../src/stream/stream-store.js';
import type { FrameSink } from '../../src/stream/subscription.js';
import { versionProblems } from './version-checker.js';

const message = (version: number): ContextEvent => ({
  type: 'message',
  version,
  seq: version,
  message: {
    id: `c:${version}`,
    seq: version,
    role: 'user',
    parts: [{ type: 'text', text: String(version) }],
    metadata: {},
    token_count: 1,
    inserted_at: '2026-01-01T00:00:00.000Z',
  },
});

/** A store holding versions retainedFrom..version; replay waits for `release` before answering. */
const scriptedStore = (
  position: StreamPosition,
  release: Promise<void> = Promise.resolve(),
): StreamStore => ({
  groupOf: () => 0,
  position: async () => position,
  async *replay(_id, at, after) {
    await release;
    const from = Math.max(after.version + 1, at.retainedFromVersion);
    for (let version = from; version <= at.version; version++) yield [{ event: message(version) }];
  },
});

const recordingSink = () => {
  const frames: { type: string; version?: number; expected?: number; actual?: number }[] = [];
  const closes: { code: number; reason: string }[] = [];
  const sink: FrameSink = {
    send: (frame) => frames.push(JSON.parse(frame) as (typeof frames)[number]),
    buffered: () => 0,
    close: (code, reason) => closes.push({ code, reason }),
  };
  return { sink, frames, closes };
};

const position = (version: number, retainedFromVersion = 1): StreamPosition => ({
  version,
  lastSeq: version,
  eventCount: 0,
  tombstoned: false,
  trimmedThroughSeq: 0,
  retainedFromVersion,
});

const logger = { warn: () => {}, error: () => {} };
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('a subscription against its store', () => {
  it('sends gap {expected, actual} when the cursor predates what the node holds, then continues from actual', async () => {
    const hub = new StreamHub({ store: scriptedStore(position(12, 10)), connectionsMax: 10, logger });
    const { sink, frames } = recordingSink();
    expect(hub.reserve()).toBe(true);
    hub.open({ contextId: 'c', cursor: 3, includeMessages: true }, sink);
    await settle();
    expect(frames.map((f) => [f.type, f.version ?? f.expected, f.actual])).toEqual([
      ['gap', 4, 10],
      ['message', 10, undefined],
      ['message', 11, undefined],
      ['message', 12, undefined],
    ]);
    hub.close();
  });

  it('holds live events during the replay and sends only those the replay did not cover', async () => {
    let release = (): void => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const hub = new StreamHub({ store: scriptedStore(position(5), released), connectionsMax: 10, logger });
    const { sink, frames } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 2, includeMessages: true }, sink);
    // Versions 4..7 are applied while the replay (up to 5) has not answered yet.
    for (let version = 4; version <= 7; version++)
      hub.onApplied({ group: 0, contextId: 'c', event: message(version) });
    release();
    await settle();
    expect(versionProblems(frames, 2, 7)).toEqual([]);
    hub.close();
  });

  it('after a snapshot restore of its group (events never announced), a live subscriber catches up from the store', async () => {
    let at = position(5);
    const store: StreamStore = {
      groupOf: () => 0,
      position: async () => at,
      async *replay(_id, upTo, after) {
        for (let version = after.version + 1; version <= upTo.version; version++)
          yield [{ event: message(version) }];
      },
    };
    const hub = new StreamHub({ store, connectionsMax: 10, logger });
    const { sink, frames } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    await settle();
    // The replica is replaced by a snapshot at version 9: 6..9 were applied elsewhere, never announced.
    at = position(9);
    hub.onRestored(0);
    await settle();
    hub.onApplied({ group: 0, contextId: 'c', event: message(10) });
    expect(versionProblems(frames, 0, 10)).toEqual([]);
    hub.close();
  });

  it('closes a subscriber with 4000 when more live events arrive during its replay than it may hold', async () => {
    const never = new Promise<void>(() => {});
    const hub = new StreamHub({
      store: scriptedStore(position(1), never),
      connectionsMax: 10,
      limits: { pendingEventsMax: 3 },
      logger,
    });
    const { sink, closes } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    for (let version = 2; version <= 6; version++)
      hub.onApplied({ group: 0, contextId: 'c', event: message(version) });
    expect(closes).toEqual([{ code: 4000, reason: 'slow consumer: reconnect with your cursor' }]);
    expect(hub.connections).toBe(0);
    hub.close();
  });

  it('closes a subscriber with 4000 when the live events held during its replay pass their byte bound', async () => {
    // A client that stops reading during its replay (and keeps answering pings) must not make the node
    // hold every new event of its context: a few large ones are enough, well under the event count.
    const never = new Promise<void>(() => {});
    const hub = new StreamHub({
      store: scriptedStore(position(1), never),
      connectionsMax: 10,
      limits: { pendingBytesMax: 100_000 },
      logger,
    });
    const { sink, closes } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    const large = (version: number): ContextEvent => {
      const event = message(version);
      if (event.type !== 'message') throw new Error('a message event');
      return { ...event, message: { ...event.message, parts: [{ type: 'text', text: 'x'.repeat(30_000) }] } };
    };
    for (let version = 2; version <= 4; version++)
      hub.onApplied({ group: 0, contextId: 'c', event: large(version) });
    expect(closes).toEqual([]); // about 90,000 held: under the bound
    hub.onApplied({ group: 0, contextId: 'c', event: large(5) });
    expect(closes).toEqual([{ code: 4000, reason: 'slow consumer: reconnect with your cursor' }]);
    expect(hub.connections).toBe(0);
    hub.close();
  });

  it('turns a gap item of the replay into a gap frame and goes on at actual', async () => {
    const store: StreamStore = {
      groupOf: () => 0,
      position: async () => position(9),
      async *replay() {
        yield [{ event: message(1) }, { event: message(2) }];
        yield [{ gap: { expected: 3, actual: 6 } }, { event: message(6) }];
        yield [{ event: message(7) }, { event: message(8) }, { event: message(9) }];
      },
    };
    const hub = new StreamHub({ store, connectionsMax: 10, logger });
    const { sink, frames, closes } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    await settle();
    expect(frames.map((f) => [f.type, f.version ?? f.expected, f.actual])).toEqual([
      ['message', 1, undefined],
      ['message', 2, undefined],
      ['gap', 3, 6],
      ...[6, 7, 8, 9].map((version) => ['message', version, undefined]),
    ]);
    expect(closes).toEqual([]);
    hub.onApplied({ group: 0, contextId: 'c', event: message(10) });
    expect(frames.at(-1)).toMatchObject({ type: 'message', version: 10 });
    hub.close();
  });

  it('starts a replay again from its cursor when a trim overtook it, sending nothing twice', async () => {
    let replays = 0;
    const store: StreamStore = {
      groupOf: () => 0,
      position: async () => position(8),
      async *replay(_id, upTo, after) {
        replays += 1;
        for (let version = after.version + 1; version <= upTo.version; version++) {
          // The first replay loses its history after version 3 (a trim applied under it).
          if (replays === 1 && version === 4) throw new HistoryTrimmedError('message 4 left the store');
          yield [{ event: message(version) }];
        }
      },
    };
    const hub = new StreamHub({ store, connectionsMax: 10, logger });
    const { sink, frames, closes } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    await settle();
    expect(replays).toBe(2);
    expect(closes).toEqual([]);
    expect(versionProblems(frames, 0, 8)).toEqual([]);
    hub.close();
  });

  it('closes with 1013 (try again later) when the archive does not answer during its replay', async () => {
    const store: StreamStore = {
      groupOf: () => 0,
      position: async () => position(8),
      async *replay() {
        yield [{ event: message(1) }, { event: message(2) }];
        throw new ServiceError('archive_unavailable', 'The archive is unavailable; retry shortly', {
          retryAfterSeconds: 1,
        });
      },
    };
    const hub = new StreamHub({ store, connectionsMax: 10, logger });
    const { sink, frames, closes } = recordingSink();
    hub.reserve();
    hub.open({ contextId: 'c', cursor: 0, includeMessages: true }, sink);
    await settle();
    expect(frames.map((f) => f.version)).toEqual([1, 2]);
    expect(closes).toEqual([{ code: 1013, reason: 'archive_unavailable: reconnect with your cursor' }]);
    expect(hub.connections).toBe(0);
    hub.close();
  });
});
