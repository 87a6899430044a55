// Every live subscriber of this node, by context: registers them (within the connection cap), hands
// each applied event to its context's subscribers, keeps their heartbeats (a ping every interval,
// a close after the idle timeout without a client frame), and closes them all when the node stops.
//
// Events come from this replica's own apply (the state machine's onEvent), never from a proposal:
// a subscriber only ever sees committed events, in apply order, on any node hosting the group.

import { isServiceError } from '../api/errors.js';
import type { AppliedEvent } from '../context/events.js';
import type { StreamPuller } from './stream-pull.js';
import { CloseCode } from './close-codes.js';
import { pingFrame } from './frames.js';
import type { StreamStore } from './stream-store.js';
import { Subscription } from './subscription.js';
import type { FrameSink, SubscriptionLimits } from './subscription.js';

export interface StreamMetrics {
  /** Frames sent since the last report (reported in batches, not per frame). */
  framesSent(count: number): void;
  slowConsumerClosed(): void;
  replayed(seconds: number): void;
}

export interface StreamLogger {
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface StreamHubOptions {
  readonly store: StreamStore;
  /** Subscribers (websocket and SSE) on this node; upgrades past it are refused with 503. */
  readonly connectionsMax: number;
  /** Default 30 s. */
  readonly pingIntervalMs?: number;
  /** Default 90 s. */
  readonly idleTimeoutMs?: number;
  readonly limits?: Partial<SubscriptionLimits>;
  readonly metrics?: StreamMetrics;
  readonly logger: StreamLogger;
  /** In a cluster: contexts of groups this node does not serve are pulled from a node that does. */
  readonly remote?: RemoteStreams;
}

export interface RemoteStreams {
  /** Whether this node serves `group` from its own replica. */
  serves(group: number): boolean;
  readonly pull: StreamPuller;
  /** How long one pull may wait at the hosting node (shorter than the pull's deadline). */
  readonly waitMs: number;
}

/**
 * What a subscriber may hold in live events during its replay, for a given unread-bytes limit: four
 * times as much, as its context goes on while the replay runs and the replay should be cut short only
 * when it cannot keep up.
 */
export const pendingBytesFor = (bufferBytesMax: number): number => 4 * bufferBytesMax;

export const defaultStreamLimits: SubscriptionLimits = {
  bufferBytesMax: 1024 * 1024,
  pendingEventsMax: 10_000,
  pendingBytesMax: pendingBytesFor(1024 * 1024),
};

export interface SubscribeRequest {
  readonly contextId: string;
  readonly cursor: number;
  readonly includeMessages: boolean;
}

export class StreamHub {
  private readonly byContext = new Map<string, Set<Subscription>>();
  private readonly all = new Set<Subscription>();
  /** Pulls from peers waiting for the next event of a context (stream-pull.ts). */
  private readonly eventWaiters = new Map<string, Set<() => void>>();
  private reserved = 0;
  private framesUnreported = 0;
  private closing = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly limits: SubscriptionLimits;
  private readonly pingIntervalMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly options: StreamHubOptions) {
    this.limits = { ...defaultStreamLimits, ...options.limits };
    this.pingIntervalMs = options.pingIntervalMs ?? 30_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 90_000;
    // One coarse sweep for every subscriber instead of two timers each.
    // (Sent-frame counts are reported on the same sweep.)
    const sweepMs = Math.max(
      10,
      Math.min(1000, Math.floor(Math.min(this.pingIntervalMs, this.idleTimeoutMs) / 4)),
    );
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  /** Open subscribers plus upgrades admitted and not yet open. */
  get connections(): number {
    return this.all.size + this.reserved;
  }

  /** Takes a place under the cap for an upgrade about to happen; false when the node is full. */
  reserve(): boolean {
    if (this.closing || this.connections >= this.options.connectionsMax) return false;
    this.reserved += 1;
    return true;
  }

  /** Gives back a place reserve() took for an upgrade that did not happen. */
  release(): void {
    this.reserved = Math.max(0, this.reserved - 1);
  }

  /** Opens a subscriber on a reserved place: registers it, then replays and goes live. */
  open(request: SubscribeRequest, sink: FrameSink): Subscription {
    this.release();
    const { metrics } = this.options;
    const subscription = new Subscription(
      request.contextId,
      this.options.store.groupOf(request.contextId),
      request.cursor,
      request.includeMessages,
      sink,
      this.limits,
      {
        onFrame: () => {
          this.framesUnreported += 1;
        },
        onSlowConsumer: () => metrics?.slowConsumerClosed(),
        onReplayed: (seconds) => metrics?.replayed(seconds),
        onClosed: (closed) => this.forget(closed),
      },
    );
    if (this.closing) {
      subscription.close(CloseCode.goingAway, 'node shutting down');
      return subscription;
    }
    this.all.add(subscription);
    const remote = this.options.remote;
    if (remote !== undefined && !remote.serves(subscription.group)) {
      this.run(subscription, subscription.follow(remote.pull, remote.waitMs));
      return subscription;
    }
    let subscribers = this.byContext.get(request.contextId);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.byContext.set(request.contextId, subscribers);
    }
    subscribers.add(subscription);
    this.run(subscription, subscription.sync(this.options.store));
    return subscription;
  }

  /** The state machine's onEvent: one applied event, handed to its context's subscribers. */
  onApplied(applied: AppliedEvent): void {
    const waiters = this.eventWaiters.get(applied.contextId);
    if (waiters !== undefined) {
      this.eventWaiters.delete(applied.contextId);
      for (const wake of waiters) wake();
    }
    const subscribers = this.byContext.get(applied.contextId);
    if (subscribers === undefined) return;
    const live =
      applied.ordinal === undefined
        ? { event: applied.event }
        : { event: applied.event, ordinal: applied.ordinal };
    for (const subscription of subscribers) subscription.onLive(live);
  }

  /** Resolves on the next applied event of `contextId`, or after `timeoutMs` (a peer's pull waits). */
  nextEvent(contextId: string, timeoutMs: number): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.eventWaiters.get(contextId);
      if (waiters === undefined) {
        waiters = new Set();
        this.eventWaiters.set(contextId, waiters);
      }
      const wake = (): void => {
        clearTimeout(timer);
        this.eventWaiters.get(contextId)?.delete(wake);
        if (this.eventWaiters.get(contextId)?.size === 0) this.eventWaiters.delete(contextId);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      waiters.add(wake);
    });
  }

  /** The state machine's onRestored: the group's subscribers catch up from the store. */
  onRestored(group: number): void {
    for (const subscription of this.all) {
      if (subscription.group === group) this.run(subscription, subscription.resync(this.options.store));
    }
  }

  /** Closes every subscriber with 1001 (going away) and refuses new ones. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    for (const waiters of [...this.eventWaiters.values()]) for (const wake of [...waiters]) wake();
    for (const subscription of [...this.all]) subscription.close(CloseCode.goingAway, 'node shutting down');
    this.reportFrames();
  }

  private run(subscription: Subscription, syncing: Promise<void>): void {
    syncing.catch((error: unknown) => {
      if (isServiceError(error)) {
        // The hosting node could not answer (unknown, unavailable): the client retries elsewhere.
        // The archive down (or hanging) during a replay of archived history lands here too, on
        // purpose a 1013 and not a `gap`: a gap would send the consumer to /messages, which reads
        // the same archive and fails alike, and leave it to stitch the hole by hand; with 1013 it
        // reconnects later with its cursor (every version before it was sent whole) and loses
        // nothing. A gap stays for history the archive will never supply (rows it lacks).
        subscription.close(CloseCode.tryAgainLater, `${error.code}: reconnect with your cursor`);
        return;
      }
      this.options.logger.error(
        {
          type: 'stream_replay_failed',
          err: error instanceof Error ? { name: error.name, message: error.message } : {},
        },
        'a stream replay failed; the subscriber was closed',
      );
      subscription.close(CloseCode.internalError, 'replay failed: reconnect with your cursor');
    });
  }

  private forget(subscription: Subscription): void {
    this.all.delete(subscription);
    const subscribers = this.byContext.get(subscription.contextId);
    if (subscribers === undefined) return;
    subscribers.delete(subscription);
    if (subscribers.size === 0) this.byContext.delete(subscription.contextId);
  }

  private reportFrames(): void {
    if (this.framesUnreported === 0) return;
    this.options.metrics?.framesSent(this.framesUnreported);
    this.framesUnreported = 0;
  }

  private sweep(): void {
    this.reportFrames();
    const now = Date.now();
    const remote = this.options.remote;
    for (const subscription of [...this.all]) {
      if (remote !== undefined && !subscription.pulled && !remote.serves(subscription.group)) {
        // Placement moved this node's replica away: its apply no longer feeds the stream. The
        // client reconnects (to this node, which then pulls from a hosting one, or to another).
        subscription.close(
          CloseCode.tryAgainLater,
          'this node no longer serves the context: reconnect with your cursor',
        );
      } else if (now - subscription.lastHeardAt >= this.idleTimeoutMs) {
        subscription.close(CloseCode.idleTimeout, 'no client frame within the idle timeout');
      } else if (now - subscription.lastPingAt >= this.pingIntervalMs) {
        subscription.ping(pingFrame);
      }
    }
  }
}
