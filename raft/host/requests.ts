// Requests: one waiter per propose/readIndex/changeMembership call, settled exactly once, and the
// deadlines that time them out. The host never blocks a caller on a turn: a request is queued, carried
// through the turns that serve it, and settled with its outcome, a Failure, or TIMEOUT at its
// deadline, whichever comes first.

import type { Failure } from '../api.js';
import type { NodeId, ProposeResult } from '../core/types.js';

/** Requests without an explicit timeout expire after this long. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export const failure = (code: Failure['code'], message?: string, leader?: NodeId | null): Failure => ({
  ok: false,
  code,
  ...(message !== undefined ? { message } : {}),
  ...(leader !== undefined ? { leader } : {}),
});

/** What the caller hears when the core refused a proposal. */
export const proposeFailure = (result: Exclude<ProposeResult, { ok: true }>): Failure => {
  switch (result.code) {
    case 'NOT_LEADER':
      return failure('NOT_LEADER', 'not the leader', result.leader);
    case 'TRANSFERRING':
      return failure('NOT_LEADER', 'leadership transfer in progress', null);
    case 'CONF_CHANGE_PENDING':
      return failure('OVERLOADED', 'a membership change is pending; retry later');
    case 'OVERLOADED':
      return failure('OVERLOADED', 'uncommitted log over its bound');
  }
};

/** Queued: waiting for the next turn to hand it to a core. Pending: in a core's log. Read: a read. */
export type Stage = 'queued' | 'pending' | 'read';

export class Request<Outcome> {
  done = false;
  stage: Stage;

  constructor(
    readonly deadlineMs: number,
    stage: Stage,
    private readonly settle: (outcome: Outcome | Failure) => void,
    private readonly onDone: (stage: Stage) => void,
  ) {
    this.stage = stage;
  }

  finish(outcome: Outcome | Failure): void {
    if (this.done) return;
    this.done = true;
    this.onDone(this.stage);
    this.settle(outcome);
  }
}

interface Expirable {
  readonly deadlineMs: number;
  readonly done: boolean;
  finish(outcome: Failure): void;
}

/**
 * Deadlines in one FIFO per distinct timeout: requests sharing a timeout expire in arrival order, so
 * expiry is O(expired) with no heap. Settled requests are skipped when they reach the head.
 */
class Deadlines {
  private readonly queues = new Map<number, { items: Expirable[]; head: number }>();

  add(timeoutMs: number, request: Expirable): void {
    let queue = this.queues.get(timeoutMs);
    if (queue === undefined) {
      queue = { items: [], head: 0 };
      this.queues.set(timeoutMs, queue);
    }
    queue.items.push(request);
  }

  expire(nowMs: number, outcome: Failure): void {
    for (const queue of this.queues.values()) {
      while (queue.head < queue.items.length) {
        const request = queue.items[queue.head] as Expirable;
        if (!request.done && request.deadlineMs > nowMs) break;
        request.finish(outcome);
        queue.head += 1;
      }
      // Drop the consumed prefix now and then so the array does not grow without bound.
      if (queue.head > 1024 && queue.head * 2 > queue.items.length) {
        queue.items.splice(0, queue.head);
        queue.head = 0;
      }
    }
  }

  /** Every request still tracked (settled ones included); used on shutdown. */
  *all(): Iterable<Expirable> {
    for (const queue of this.queues.values()) {
      for (let i = queue.head; i < queue.items.length; i += 1) yield queue.items[i] as Expirable;
    }
  }
}

/**
 * Every request of the host, and how many proposals are in each stage: the queued ones are bounded by
 * limits.proposalQueueMax, the pending ones by limits.pendingProposalsMax. A request leaves its
 * stage's count when it settles, however it settles.
 */
export class Requests {
  private readonly deadlines = new Deadlines();
  queuedProposals = 0;
  pendingProposals = 0;

  constructor(private readonly now: () => number) {}

  create<Outcome>(
    timeoutMs: number | undefined,
    stage: Stage,
    settle: (outcome: Outcome | Failure) => void,
  ): Request<Outcome> {
    const timeout = timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const request = new Request<Outcome>(this.now() + timeout, stage, settle, (settledStage) =>
      this.countSettled(settledStage),
    );
    this.deadlines.add(timeout, request);
    return request;
  }

  /** A queued proposal the core took: it now waits for its entry to apply. */
  handedOff(request: { stage: Stage }): void {
    this.queuedProposals -= 1;
    this.pendingProposals += 1;
    request.stage = 'pending';
  }

  /** Settles every request past its deadline with `outcome`. */
  expire(nowMs: number, outcome: Failure): void {
    this.deadlines.expire(nowMs, outcome);
  }

  /** Shutdown or failure: every request still waiting gets `outcome`. */
  settleAll(outcome: Failure): void {
    for (const request of this.deadlines.all()) request.finish(outcome);
  }

  private countSettled(stage: Stage): void {
    if (stage === 'queued') this.queuedProposals -= 1;
    else if (stage === 'pending') this.pendingProposals -= 1;
  }
}
