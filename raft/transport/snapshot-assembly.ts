// Reassembly of one incoming snapshot transfer. Chunks must arrive in order (seq 0, 1, ...) for
// one group; their pairs are kept as zero-copy views, so the bytes held are the chunks' encoded
// sizes, which a budget shared by all concurrent transfers bounds: a snapshot too large for it is
// refused instead of exhausting memory.

import type { SnapshotChunk } from '../api.js';
import type { GroupId, Message, NodeId } from '../core/types.js';

/** Bytes of snapshot data held across every transfer in progress. */
export class SnapshotBudget {
  private readonly bytesMax: number;
  private usedBytes = 0;

  constructor(bytesMax: number) {
    this.bytesMax = bytesMax;
  }

  reserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.bytesMax) return false;
    this.usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
  }

  get used(): number {
    return this.usedBytes;
  }
}

export interface CompleteSnapshot {
  readonly from: NodeId;
  readonly group: GroupId;
  readonly message: Message;
  readonly pairs: readonly (readonly [Uint8Array, Uint8Array])[];
}

export type AddOutcome =
  | { readonly kind: 'more' }
  | { readonly kind: 'complete'; readonly snapshot: CompleteSnapshot }
  | { readonly kind: 'refused'; readonly reason: 'out_of_order' | 'too_large' };

export class SnapshotAssembly {
  private readonly budget: SnapshotBudget;
  private reservedBytes = 0;
  private nextSeq = 0;
  private group: GroupId | undefined;
  private readonly pairs: (readonly [Uint8Array, Uint8Array])[] = [];

  constructor(budget: SnapshotBudget) {
    this.budget = budget;
  }

  /** `encodedBytes` is the chunk's size on the wire, which its decoded pairs keep alive. */
  add(from: NodeId, chunk: SnapshotChunk, encodedBytes: number): AddOutcome {
    if (chunk.seq !== this.nextSeq || (this.group !== undefined && chunk.group !== this.group)) {
      return { kind: 'refused', reason: 'out_of_order' };
    }
    if (!this.budget.reserve(encodedBytes)) return { kind: 'refused', reason: 'too_large' };
    this.reservedBytes += encodedBytes;
    this.nextSeq += 1;
    this.group = chunk.group;
    for (const pair of chunk.pairs) this.pairs.push(pair);
    if (!chunk.last) return { kind: 'more' };
    return {
      kind: 'complete',
      snapshot: { from, group: chunk.group, message: chunk.message, pairs: this.pairs },
    };
  }

  /** Give the held bytes back to the budget. Idempotent. */
  release(): void {
    this.budget.release(this.reservedBytes);
    this.reservedBytes = 0;
  }
}
