// One subscriber of one context, whatever carries its frames (websocket, SSE, a peer). It owns the
// seam between replay and live, with one comparison, as DESIGN.md describes etcd's watch:
//
// 1. The hub registers it as a live listener first (live events from then on are held in `pending`).
// 2. It reads the position the history stands at (StreamPosition) and replays from the store every
//    event after its cursor up to that position (history the archiver trimmed from the archive,
//    when one is configured), a page at a time, paced by the client's buffer. What can be read
//    neither way is a `gap` frame; a trim that overtakes the replay starts it again from the cursor.
// 3. It then sends the held live events that the replay did not cover, and goes live.
//
// "Covered" is the one comparison: an event was replayed iff its version is at or below the
// position's version and, for an event stored under its own key, its ordinal is below the position's
// event count (a configuration change after the position has the same version as the last append).
// Nothing is sent twice, nothing is skipped without a gap frame, and a version never goes backwards.

import type { ContextEvent } from '../context/events.js';
import { CloseCode } from './close-codes.js';
import { encodeEvent, encodeFrame } from './frames.js';
import type { StreamFrame } from './frames.js';
import type { StreamPuller } from './stream-pull.js';
import { HistoryTrimmedError, isReplayGap } from './stream-store.js';
import type { HistoryPoint, StreamPosition, StreamStore } from './stream-store.js';

/** Events one pull asks a hosting node for. */
const pullEventsMax = 256;
/** Replays started again after a trim overtook them, before the subscriber is closed (1011). */
const replayAttemptsMax = 4;

/** Where frames go: a websocket, an SSE response, a peer's stream. */
export interface FrameSink {
  /**
   * Sends one JSON frame. `resumeFrom` is the cursor a client resuming after this frame should send
   * (SSE writes it as the event id); undefined for frames that do not move it (ping).
   */
  send(frame: string, type: string, resumeFrom: number | undefined): void;
  /** Bytes queued for this client that it has not taken yet. */
  buffered(): number;
  /** Ends the transport with a close code (SSE reports it in a final event). */
  close(code: number, reason: string): void;
}

/** A live event as the hub hands it over (AppliedEvent without the routing fields). */
export interface LiveEvent {
  readonly event: ContextEvent;
  readonly ordinal?: number;
}

export interface SubscriptionLimits {
  /** Bytes a live subscriber may leave unread before it is closed as a slow consumer. */
  readonly bufferBytesMax: number;
  /** Live events held while the replay runs; past it the subscriber is closed as a slow consumer. */
  readonly pendingEventsMax: number;
  /**
   * Their size as frames (UTF-16 units of the encoded JSON), bounded the same way: a client that stops
   * reading during its replay (and keeps answering pings) would otherwise hold every new event of its
   * context in memory, up to pendingEventsMax of any size.
   */
  readonly pendingBytesMax: number;
}

export interface SubscriptionHooks {
  readonly onFrame: () => void;
  readonly onSlowConsumer: () => void;
  readonly onReplayed: (seconds: number) => void;
  readonly onClosed: (subscription: Subscription) => void;
}

export class Subscription {
  private phase: 'registered' | 'syncing' | 'live' | 'closed' = 'registered';
  private pending: LiveEvent[] = [];
  /** The held events' size as frames (see SubscriptionLimits.pendingBytesMax). */
  private pendingBytes = 0;
  private position: StreamPosition | undefined;
  private wakeForRoom: (() => void) | undefined;
  /** The last version this subscriber has been given (all of it): the cursor it would resume from. */
  private lastVersion: number;
  /** Fed by pulls from a hosting node (follow) rather than this node's apply. */
  pulled = false;
  /** Heartbeat bookkeeping, kept by the hub. */
  lastHeardAt = Date.now();
  lastPingAt = Date.now();

  constructor(
    readonly contextId: string,
    readonly group: number,
    cursor: number,
    readonly includeMessages: boolean,
    private readonly sink: FrameSink,
    private readonly limits: SubscriptionLimits,
    private readonly hooks: SubscriptionHooks,
  ) {
    this.lastVersion = cursor;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  get cursor(): number {
    return this.lastVersion;
  }

  /** Replays from the store, then goes live. Call once registered; call again after a resync. */
  async sync(store: StreamStore): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'syncing';
    const started = performance.now();
    let position: StreamPosition | undefined;
    for (let attempt = 1; position === undefined; attempt++) {
      try {
        position = await this.replay(store);
        if (position === undefined) return; // closed meanwhile
      } catch (error) {
        // A trim took messages this replay had not read yet: everything up to the cursor was
        // delivered whole (batches end between versions), so start again from it, at a new position.
        if (!(error instanceof HistoryTrimmedError) || attempt >= replayAttemptsMax) throw error;
      }
    }
    this.position = position;
    this.phase = 'live';
    this.hooks.onReplayed((performance.now() - started) / 1000);
    const held = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const live of held) this.onLive(live);
    if (position.tombstoned && !this.closed) {
      this.sendFrame({ type: 'tombstoned', version: position.version }, position.version);
      this.close(CloseCode.tombstoned, 'context tombstoned');
    }
  }

  /** One replay from the cursor up to a position read now; undefined once closed. */
  private async replay(store: StreamStore): Promise<StreamPosition | undefined> {
    const position = await store.position(this.contextId);
    if (this.closed) return undefined;
    if (position === undefined) {
      this.close(CloseCode.tryAgainLater, 'context not found on this node');
      return undefined;
    }
    if (this.lastVersion > position.version) {
      // A cursor from beyond this context's history (another context's, or made up): start over.
      this.sendFrame({ type: 'reset', version: 0 }, 0);
      this.lastVersion = 0;
    }
    if (this.lastVersion + 1 < position.retainedFromVersion) {
      this.gap(this.lastVersion + 1, position.retainedFromVersion);
    }
    for await (const batch of store.replay(this.contextId, position, { version: this.lastVersion })) {
      for (const item of batch) {
        if (this.closed) return undefined;
        if (isReplayGap(item)) this.gap(item.gap.expected, item.gap.actual);
        else this.deliver(item.event, false);
      }
      await this.room();
      if (this.closed) return undefined;
    }
    return position;
  }

  /** Versions expected..actual-1 cannot be sent: the client learns it, the stream goes on at actual. */
  private gap(expected: number, actual: number): void {
    this.sendFrame({ type: 'gap', expected, actual }, actual - 1);
    this.lastVersion = actual - 1;
  }

  /**
   * Runs this subscriber from a hosting node's answers instead of this node's replica (a node
   * without a replica of the group, stream-pull.ts): the same frames and checks, pulled in pages.
   */
  async follow(pull: StreamPuller, waitMs: number): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'live';
    this.pulled = true;
    const started = performance.now();
    let caughtUp = false;
    let after: HistoryPoint = { version: this.lastVersion };
    while (!this.closed) {
      const answer = await pull(this.contextId, { after, waitMs, eventsMax: pullEventsMax });
      if (this.closed) return;
      if (answer.reset === true) {
        this.sendFrame({ type: 'reset', version: 0 }, 0);
        this.lastVersion = 0;
      }
      if (answer.gap !== undefined) this.gap(answer.gap.expected, answer.gap.actual);
      for (const event of answer.events) {
        this.deliver(event, caughtUp);
        if (this.closed) return;
      }
      if (answer.tombstoned === true) {
        this.sendFrame({ type: 'tombstoned', version: this.lastVersion }, this.lastVersion);
        this.close(CloseCode.tombstoned, 'context tombstoned');
        return;
      }
      if (!caughtUp && answer.next.ordinal !== undefined) {
        caughtUp = true;
        this.hooks.onReplayed((performance.now() - started) / 1000);
      }
      await this.room();
      after = answer.next;
    }
  }

  /** The group's replica was replaced by a snapshot: catch up from the store again, from the cursor. */
  resync(store: StreamStore): Promise<void> {
    if (this.phase !== 'live') return Promise.resolve();
    return this.sync(store);
  }

  /** A live event of this context, as the replica applied it. */
  onLive(live: LiveEvent): void {
    if (this.phase === 'closed' || this.phase === 'registered') {
      if (this.phase === 'registered') this.hold(live);
      return;
    }
    if (this.phase === 'syncing') {
      this.hold(live);
      return;
    }
    if (this.covered(live)) return;
    this.deliver(live.event, true);
  }

  /** The transport can take more (uWS drain, SSE writable). */
  drained(): void {
    const wake = this.wakeForRoom;
    this.wakeForRoom = undefined;
    wake?.();
  }

  heard(): void {
    this.lastHeardAt = Date.now();
  }

  ping(frame: string): void {
    if (this.closed) return;
    this.lastPingAt = Date.now();
    this.sink.send(frame, 'ping', undefined);
    this.hooks.onFrame();
  }

  close(code: number, reason: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.pending = [];
    this.pendingBytes = 0;
    this.drained();
    this.sink.close(code, reason);
    this.hooks.onClosed(this);
  }

  /** The transport closed by itself (client went away): nothing more to send. */
  gone(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.pending = [];
    this.pendingBytes = 0;
    this.drained();
    this.hooks.onClosed(this);
  }

  private hold(live: LiveEvent): void {
    this.pending.push(live);
    // Encoded once per event for all its subscribers, and needed when it is sent anyway.
    this.pendingBytes += encodeEvent(live.event).length;
    if (this.pending.length > this.limits.pendingEventsMax || this.pendingBytes > this.limits.pendingBytesMax)
      this.slowConsumer();
  }

  private covered(live: LiveEvent): boolean {
    const position = this.position;
    if (position === undefined) return false;
    // Both for a stored event: the replay read those below the count *and* up to the version.
    if (live.ordinal !== undefined && live.ordinal >= position.eventCount) return false;
    return live.event.version <= position.version;
  }

  private deliver(event: ContextEvent, live: boolean): void {
    if (event.version < this.lastVersion) return; // never backwards (defensive: covered() decides)
    // A slow consumer is closed only between versions, so a client that resumes from its cursor v
    // has had all of v or none of it.
    if (live && event.version > this.lastVersion && this.sink.buffered() > this.limits.bufferBytesMax) {
      this.slowConsumer();
      return;
    }
    this.lastVersion = event.version;
    if (event.type === 'message' && !this.includeMessages) return;
    this.sink.send(encodeEvent(event), event.type, event.version);
    this.hooks.onFrame();
    if (event.type === 'tombstoned') this.close(CloseCode.tombstoned, 'context tombstoned');
  }

  private sendFrame(frame: StreamFrame, resumeFrom: number): void {
    this.sink.send(encodeFrame(frame), frame.type, resumeFrom);
    this.hooks.onFrame();
  }

  private slowConsumer(): void {
    if (this.closed) return;
    this.hooks.onSlowConsumer();
    this.close(CloseCode.slowConsumer, 'slow consumer: reconnect with your cursor');
  }

  /** Resolves once the client's buffer is back under its limit (or the subscription closed). */
  private async room(): Promise<void> {
    while (!this.closed && this.sink.buffered() > this.limits.bufferBytesMax) {
      await new Promise<void>((resolve) => {
        this.wakeForRoom = resolve;
      });
    }
  }
}
