// Applied writes that are not durable yet. The host persists a group's applied writes in a later
// store batch than the one that applied them, so until `persisted(group, index)` covers an entry,
// the store (GroupKv) does not show its writes: every read of the state machine consults this
// overlay first. Memory is bounded by the host's persistence lag, not by history.

import { keyString } from './keys.js';

export interface DirtyWrite {
  readonly key: Uint8Array;
  /** null: deleted. */
  readonly value: Uint8Array | null;
}

interface OverlayEntry extends DirtyWrite {
  readonly index: number;
}

class GroupOverlay {
  readonly entries = new Map<string, OverlayEntry>();
  /** Entries' keys in apply order; `head` is the first not yet dropped. */
  private readonly journal: { readonly index: number; readonly keys: readonly string[] }[] = [];
  private head = 0;

  record(index: number, writes: ReadonlyMap<string, DirtyWrite>): void {
    for (const [name, write] of writes) this.entries.set(name, { ...write, index });
    this.journal.push({ index, keys: [...writes.keys()] });
  }

  persisted(index: number): void {
    while (this.head < this.journal.length) {
      const applied = this.journal[this.head];
      if (applied === undefined || applied.index > index) break;
      for (const name of applied.keys) {
        // A later entry may have rewritten the key; its value is still not durable.
        if ((this.entries.get(name)?.index ?? Infinity) <= index) this.entries.delete(name);
      }
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.journal.length) {
      this.journal.splice(0, this.head);
      this.head = 0;
    }
  }
}

export class DirtyOverlay {
  private readonly groups = new Map<number, GroupOverlay>();

  /** The dirty value of `key`: bytes, null when deleted, undefined when the store is authoritative. */
  get(group: number, key: Uint8Array): Uint8Array | null | undefined {
    return this.groups.get(group)?.entries.get(keyString(key))?.value;
  }

  /** Dirty writes with `gte <= key <= lte`, unordered. */
  inRange(group: number, gte: Uint8Array, lte: Uint8Array): DirtyWrite[] {
    const overlay = this.groups.get(group);
    if (overlay === undefined || overlay.entries.size === 0) return [];
    const low = keyString(gte);
    const high = keyString(lte);
    const found: DirtyWrite[] = [];
    for (const [name, entry] of overlay.entries) if (name >= low && name <= high) found.push(entry);
    return found;
  }

  record(group: number, index: number, writes: ReadonlyMap<string, DirtyWrite>): void {
    if (writes.size === 0) return;
    let overlay = this.groups.get(group);
    if (overlay === undefined) {
      overlay = new GroupOverlay();
      this.groups.set(group, overlay);
    }
    overlay.record(index, writes);
  }

  persisted(group: number, index: number): void {
    const overlay = this.groups.get(group);
    if (overlay === undefined) return;
    overlay.persisted(index);
    if (overlay.entries.size === 0) this.groups.delete(group);
  }

  drop(group: number): void {
    this.groups.delete(group);
  }

  /** Dirty keys held, across groups (for tests and metrics). */
  size(): number {
    let total = 0;
    for (const overlay of this.groups.values()) total += overlay.entries.size;
    return total;
  }
}
