// A MemoryStore whose writes can be held until released: shows what a host does while its write is
// still in flight (early sends, pipelined turns).

import type { BatchOp } from '../../../raft/api.js';
import { MemoryStore } from '../storage/memory-store.js';

/** A MemoryStore whose writes can be held until released. */
export class GatedStore extends MemoryStore {
  private gate: { promise: Promise<void>; release: () => void } | undefined;
  held = 0;

  hold(): void {
    let release = (): void => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.gate = { promise, release };
  }

  release(): void {
    this.gate?.release();
    this.gate = undefined;
  }

  override async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
    if (this.gate !== undefined) {
      this.held += 1;
      await this.gate.promise;
    }
    return super.write(ops, options);
  }
}
