// The leader's view of one follower (etcd's tracker.Progress): how much of the log it is known to hold,
// where the next App starts, and the flow-control state that decides whether another App may go out.
//
// - probe: the follower's log position is unknown; send one App and wait for its answer (or a
//   heartbeat response) before the next.
// - replicate: the follower is known to match; pipeline Apps optimistically within the inflight window.
// - snapshot: the follower needs a snapshot; send nothing until the host reports its outcome.

import { Inflights } from './inflights.js';
import { invariant } from './invariant.js';
import type { Index, ProgressStatus } from './types.js';

export type ProgressState = ProgressStatus['state'];

export class Progress {
  // Invariant: match < next
  match: Index = 0;
  next: Index;
  state: ProgressState = 'probe';
  /** In snapshot state: the index of the snapshot being sent. 0 when none. */
  pendingSnapshot: Index = 0;
  /** Heard from since the last check-quorum round (the leader's own entry is always true). */
  recentActive = false;
  /**
   * probe: an App is in flight, wait for its answer. replicate: the inflight window filled up. A
   * heartbeat response clears it so at least an empty App can go out and resynchronise the window.
   */
  paused = false;
  readonly inflights: Inflights;

  constructor(next: Index, inflightMsgsMax: number, inflightBytesMax: number) {
    invariant(next >= 1, 'progress next must be >= 1');
    this.next = next;
    this.inflights = new Inflights(inflightMsgsMax, inflightBytesMax);
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot, so probing starts right after it.
    const afterSnapshot = this.state === 'snapshot' ? this.pendingSnapshot + 1 : 0;
    this.resetState('probe');
    this.next = Math.max(this.match + 1, afterSnapshot);
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: Index): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** A successful AppResp acked `index`. Returns whether it moved `match` forward. */
  maybeUpdate(index: Index): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.paused = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower rejected an App whose previous index was `rejected`, hinting that its log may match
   * up to `matchHint`. Returns false for stale rejections (which must not move `next`).
   */
  maybeDecrTo(rejected: Index, matchHint: Index): boolean {
    if (this.state === 'replicate') {
      // Everything up to match is acked, so a rejection at or below it is an old message.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the probe we sent (from next - 1) is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.paused = false;
    return true;
  }

  /** An App carrying `count` entries ending at `lastIndex` (`bytes` of data) was sent. */
  sentEntries(count: number, lastIndex: Index, bytes: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
      this.paused = this.inflights.full();
    } else if (this.state === 'probe' && count > 0) {
      this.paused = true;
    }
  }

  isPaused(): boolean {
    return this.state === 'snapshot' || this.paused;
  }

  status(): ProgressStatus {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive };
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.paused = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }
}
