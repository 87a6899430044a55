// Streams for nodes without a replica: such a node pulls a context's events from a node that hosts
// its group, over the existing remote service call (src/cluster/remote), as a long poll. Each pull
// asks for the events after a history point; the hosting node answers at once when there are any,
// or waits (bounded) for the next applied event of the context. The answer says where the next
// pull starts, so nothing is skipped or repeated across pulls, and across hosting nodes: a pull may
// go to any replica, because the first one of a subscriber passes a linearizable read barrier and
// every later one starts from a point that replica's answer came from (a replica that has not
// applied that far yet waits for it, and answers nothing meanwhile).

import type { ContextService } from '../api/service.js';
import type { ContextEvent } from '../context/events.js';
import { HistoryTrimmedError, isReplayGap } from './stream-store.js';
import type { HistoryPoint, StreamStore } from './stream-store.js';

export interface PullRequest {
  readonly after: HistoryPoint;
  /** How long the hosting node may wait for an event before answering an empty page. */
  readonly waitMs: number;
  /** Events per answer (whole versions: one version's events are never split). */
  readonly eventsMax: number;
}

export interface PullAnswer {
  readonly events: readonly ContextEvent[];
  /** Where the next pull starts. */
  readonly next: HistoryPoint;
  /** The cursor was older than what this node holds: the answer starts at `actual`. */
  readonly gap?: { readonly expected: number; readonly actual: number };
  /** The cursor was ahead of the context's history: the answer starts over from version 0. */
  readonly reset?: boolean;
  /** The context is tombstoned and every event up to its tombstone has been sent. */
  readonly tombstoned?: boolean;
}

/** What the hosting node needs to answer pulls. */
export interface PullSource {
  readonly store: StreamStore;
  /** Resolves on the next applied event of `contextId`, or after `timeoutMs`. */
  nextEvent(contextId: string, timeoutMs: number): Promise<void>;
}

/** The hosting node's side: answers one pull. Throws ServiceError (404 for an unknown context). */
export type StreamPullTarget = (contextId: string, request: PullRequest) => Promise<PullAnswer>;

/** The subscribing node's side: one pull from some node hosting the context's group. */
export type StreamPuller = (contextId: string, request: PullRequest) => Promise<PullAnswer>;

/** Longest wait a pull may ask for (the caller's deadline must outlast it). */
export const pullWaitMsMax = 25_000;

/** Reads of a pull started again after a trim overtook them, before the pull fails. */
const readAttemptsMax = 4;

export const createPullTarget = (source: PullSource, service: ContextService): StreamPullTarget => {
  return async (contextId, request) => {
    let after = request.after;
    let gap: PullAnswer['gap'];
    let reset = false;
    let trimmedReads = 0;
    const first = after.ordinal === undefined;
    // The subscriber's first pull: 404 for an unknown context, and the barrier that brings this
    // replica at least up to anything the client saw elsewhere.
    if (first) await service.getContext(contextId);
    const deadline = Date.now() + Math.min(pullWaitMsMax, Math.max(0, request.waitMs));
    for (;;) {
      const position = await source.store.position(contextId);
      if (position === undefined) return { events: [], next: after };
      if (first && after.version > position.version) {
        reset = true;
        after = { version: 0 };
      }
      // Also on a later pull: a trim (without an archive) can overtake a subscriber between pulls.
      if (after.version + 1 < position.retainedFromVersion) {
        gap = joinGaps(gap, { expected: after.version + 1, actual: position.retainedFromVersion });
        after = { version: position.retainedFromVersion - 1 };
      }
      // A later pull that reaches a replica behind the point it starts from: nothing yet.
      const behind = after.version > position.version || (after.ordinal ?? 0) > position.eventCount;
      let page: Page | undefined;
      try {
        page = behind
          ? undefined
          : await readPage(source.store, contextId, position, after, request.eventsMax);
      } catch (error) {
        // A trim took messages the read had not reached: read again from a new position.
        if (!(error instanceof HistoryTrimmedError) || ++trimmedReads >= readAttemptsMax) throw error;
        continue;
      }
      if (page?.gap !== undefined) gap = joinGaps(gap, page.gap);
      const answer = (events: readonly ContextEvent[], next: HistoryPoint): PullAnswer => ({
        events,
        next,
        ...(gap === undefined ? {} : { gap }),
        ...(reset ? { reset } : {}),
        ...(position.tombstoned && page?.complete === true ? { tombstoned: true } : {}),
      });
      if (page !== undefined && (page.events.length > 0 || page.gap !== undefined || position.tombstoned)) {
        return answer(page.events, page.next);
      }
      const left = deadline - Date.now();
      if (left <= 0) return answer([], page?.next ?? after);
      await source.nextEvent(contextId, left);
    }
  };
};

/** Two gaps one after the other, as one (the second starts where the first ended). */
const joinGaps = (
  earlier: PullAnswer['gap'],
  later: NonNullable<PullAnswer['gap']>,
): NonNullable<PullAnswer['gap']> =>
  earlier === undefined ? later : { expected: earlier.expected, actual: later.actual };

interface Page {
  readonly events: ContextEvent[];
  readonly next: HistoryPoint;
  readonly complete: boolean;
  /** Versions the replay could not supply before `events` (the page never holds a gap after one). */
  readonly gap?: { readonly expected: number; readonly actual: number };
}

/**
 * The events after `after` up to `position`, about `eventsMax` of them, cut only between versions.
 * Cut short, the next pull starts after the last version sent (no later event can still land at
 * it: the history has gone past it); read to the end, after the position itself. A gap the replay
 * meets after some events ends the page before it (the next pull starts with it).
 */
const readPage = async (
  store: StreamStore,
  contextId: string,
  position: Parameters<StreamStore['replay']>[1],
  after: HistoryPoint,
  eventsMax: number,
): Promise<Page> => {
  const events: ContextEvent[] = [];
  let gap: Page['gap'];
  for await (const batch of store.replay(contextId, position, after)) {
    for (const item of batch) {
      const last = events.at(-1);
      const cutAt = last === undefined ? undefined : { version: last.version };
      if (isReplayGap(item)) {
        if (cutAt !== undefined) return { events, next: cutAt, complete: false };
        gap = joinGaps(gap, item.gap);
        continue;
      }
      const { event } = item;
      if (cutAt !== undefined && events.length >= eventsMax && event.version > cutAt.version) {
        return { events, next: cutAt, complete: false, ...(gap === undefined ? {} : { gap }) };
      }
      events.push(event);
    }
  }
  const next = { version: position.version, ordinal: position.eventCount };
  return { events, next, complete: true, ...(gap === undefined ? {} : { gap }) };
};
