// Records every request the workload makes and the answer it got (or that it got none), with start
// and end times on one monotonic clock, for the checker. Pure data: no I/O.

import { performance } from 'node:perf_hooks';

export type Operation =
  | {
      readonly kind: 'append';
      readonly context: string;
      /** The message id, sent as the Idempotency-Key too: every retry of one append reuses it. */
      readonly key: string;
      readonly ifVersion?: number;
    }
  | { readonly kind: 'read'; readonly context: string; readonly read: 'tail' | 'window' | 'get' };

/** What an answer showed: an append's seq and version, a read's newest seq and/or version. */
export interface Observation {
  readonly seq?: number;
  readonly version?: number;
  /** 200 with Idempotent-Replayed: the append was already there. */
  readonly replayed?: boolean;
}

export interface HistoryEvent {
  readonly index: number;
  readonly node: string;
  readonly op: Operation;
  readonly start: number;
  readonly end: number;
  /** HTTP status; 0 when no answer arrived (network error, reset, timeout). */
  readonly status: number;
  readonly error?: string;
  readonly observed?: Observation;
  readonly retryAfter?: string;
}

export const isAck = (event: HistoryEvent): boolean =>
  event.op.kind === 'append' && (event.status === 201 || event.status === 200);

export const isOkRead = (event: HistoryEvent): boolean => event.op.kind === 'read' && event.status === 200;

export class Recorder {
  private readonly events: HistoryEvent[] = [];
  private nextIndex = 0;

  now(): number {
    return performance.now();
  }

  /** Starts one request; call the returned function with its outcome. */
  begin(
    node: string,
    op: Operation,
  ): (outcome: Omit<HistoryEvent, 'index' | 'node' | 'op' | 'start' | 'end'>) => void {
    const start = this.now();
    const index = this.nextIndex;
    this.nextIndex += 1;
    return (outcome) => {
      this.events.push({ index, node, op, start, end: this.now(), ...outcome });
    };
  }

  history(): readonly HistoryEvent[] {
    return [...this.events].sort((a, b) => a.index - b.index);
  }

  /** Count of answers by status. */
  statusCounts(since = 0): Map<number, number> {
    const counts = new Map<number, number>();
    for (const event of this.events) {
      if (event.start < since) continue;
      counts.set(event.status, (counts.get(event.status) ?? 0) + 1);
    }
    return counts;
  }
}

export const describeCounts = (counts: ReadonlyMap<number, number>): string =>
  [...counts]
    .sort((a, b) => a[0] - b[0])
    .map(([status, count]) => `${status}:${count}`)
    .join(' ');
