// The window of App messages in flight to one follower in replicate state: a ring buffer of the last
// entry index each message carried and its entry bytes, so an ack frees a prefix in O(freed).

import { invariant } from './invariant.js';
import type { Index } from './types.js';

export class Inflights {
  private readonly lastIndexes: Float64Array;
  private readonly sizesBytes: Float64Array;
  private start = 0;
  // Invariant: 0 <= count <= capacity
  private count = 0;
  // Invariant: bytes is the sum of sizesBytes over the live slots
  private bytes = 0;

  /** `bytesMax` 0 means unbounded. */
  constructor(
    private readonly capacity: number,
    private readonly bytesMax: number,
  ) {
    invariant(capacity > 0, 'inflight capacity must be positive');
    this.lastIndexes = new Float64Array(capacity);
    this.sizesBytes = new Float64Array(capacity);
  }

  /** Records a sent message whose last entry is `lastIndex`. Indexes must increase. */
  add(lastIndex: Index, sizeBytes: number): void {
    invariant(this.count < this.capacity, 'inflights overflow');
    invariant(this.count === 0 || lastIndex > this.newest(), 'inflight indexes must increase');
    const slot = (this.start + this.count) % this.capacity;
    this.lastIndexes[slot] = lastIndex;
    this.sizesBytes[slot] = sizeBytes;
    this.count += 1;
    this.bytes += sizeBytes;
  }

  /** Frees every message whose last index is <= `index` (the follower acked up to it). */
  freeLE(index: Index): void {
    while (this.count > 0 && (this.lastIndexes[this.start] ?? 0) <= index) {
      this.bytes -= this.sizesBytes[this.start] ?? 0;
      this.start = (this.start + 1) % this.capacity;
      this.count -= 1;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  full(): boolean {
    return this.count === this.capacity || (this.bytesMax > 0 && this.bytes >= this.bytesMax);
  }

  size(): number {
    return this.count;
  }

  sizeBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }

  private newest(): Index {
    return this.lastIndexes[(this.start + this.count - 1) % this.capacity] ?? 0;
  }
}
