// Linearizable reads on the leader (etcd's ReadOnlySafe): each read records the commit index at the
// time it arrived, then waits for a quorum to acknowledge a heartbeat sent after it. An ack for a later
// heartbeat also proves leadership for every read queued before it, so reads are released in order.
//
// Reads are keyed by a leader-local sequence number, not the requester's context: contexts come from
// different nodes and may collide.

import type { Index, NodeId } from './types.js';

export interface PendingRead {
  readonly seq: number;
  /** The commit index when the read arrived: the read may be served once applied reaches it. */
  readonly index: Index;
  readonly requester: NodeId;
  /** The requester's own read id, echoed back in its ReadState. */
  readonly context: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private readonly bySeq = new Map<number, PendingRead>();
  // Invariant: queue[head..] holds exactly the keys of bySeq, in increasing seq order
  private queue: number[] = [];
  private head = 0;

  add(read: Omit<PendingRead, 'acks'>, selfId: NodeId): void {
    if (this.bySeq.has(read.seq)) return;
    this.bySeq.set(read.seq, { ...read, acks: new Set([selfId]) });
    this.queue.push(read.seq);
  }

  /** Records `from`'s ack of the heartbeat carrying `seq`; returns the ackers, or undefined if unknown. */
  recvAck(from: NodeId, seq: number): ReadonlySet<NodeId> | undefined {
    const read = this.bySeq.get(seq);
    if (read === undefined) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /** Removes and returns every read queued up to and including `seq`, oldest first. */
  advance(seq: number): PendingRead[] {
    if (!this.bySeq.has(seq)) return [];
    const released: PendingRead[] = [];
    while (this.head < this.queue.length) {
      const current = this.queue[this.head] as number;
      this.head++;
      const read = this.bySeq.get(current);
      if (read !== undefined) {
        released.push(read);
        this.bySeq.delete(current);
      }
      if (current === seq) break;
    }
    this.compactQueue();
    return released;
  }

  /** The newest pending read: periodic heartbeats carry it so a lost round is retried. */
  lastPendingSeq(): number | undefined {
    return this.head < this.queue.length ? this.queue[this.queue.length - 1] : undefined;
  }

  pendingCount(): number {
    return this.bySeq.size;
  }

  reset(): void {
    this.bySeq.clear();
    this.queue = [];
    this.head = 0;
  }

  private compactQueue(): void {
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
