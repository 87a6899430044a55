// Proves snapshot reassembly keeps chunks in order, refuses gaps, repeats and group switches, and
// that the byte budget shared by concurrent transfers refuses what does not fit until released.

import { describe, expect, it } from 'vitest';
import type { SnapshotChunk } from '../../../raft/api.js';
import { MessageType } from '../../../raft/core/types.js';
import { SnapshotAssembly, SnapshotBudget } from '../../../raft/transport/snapshot-assembly.js';

const snap = { type: MessageType.Snap, from: 'a', to: 'b', term: 2 } as const;
const pair = (n: number): readonly [Uint8Array, Uint8Array] => [new Uint8Array([n]), new Uint8Array([n, n])];
const chunk = (seq: number, last: boolean, group = 7): SnapshotChunk => ({
  group,
  message: snap,
  seq,
  pairs: [pair(seq * 2), pair(seq * 2 + 1)],
  last,
});

describe('SnapshotAssembly', () => {
  it('concatenates in-order chunks and completes on the last', () => {
    const assembly = new SnapshotAssembly(new SnapshotBudget(1_000));
    expect(assembly.add('a', chunk(0, false), 10).kind).toBe('more');
    expect(assembly.add('a', chunk(1, false), 10).kind).toBe('more');
    const outcome = assembly.add('a', chunk(2, true), 10);
    expect(outcome.kind).toBe('complete');
    if (outcome.kind !== 'complete') return;
    expect(outcome.snapshot.group).toBe(7);
    expect(outcome.snapshot.from).toBe('a');
    expect(outcome.snapshot.pairs.map(([key]) => key[0])).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses a gap, a repeat and a different group', () => {
    const gap = new SnapshotAssembly(new SnapshotBudget(1_000));
    expect(gap.add('a', chunk(1, false), 10)).toEqual({ kind: 'refused', reason: 'out_of_order' });
    const repeat = new SnapshotAssembly(new SnapshotBudget(1_000));
    repeat.add('a', chunk(0, false), 10);
    expect(repeat.add('a', chunk(0, false), 10)).toEqual({ kind: 'refused', reason: 'out_of_order' });
    const switched = new SnapshotAssembly(new SnapshotBudget(1_000));
    switched.add('a', chunk(0, false), 10);
    expect(switched.add('a', chunk(1, true, 8), 10)).toEqual({ kind: 'refused', reason: 'out_of_order' });
  });

  it('shares one budget between transfers and frees it on release', () => {
    const budget = new SnapshotBudget(25);
    const first = new SnapshotAssembly(budget);
    const second = new SnapshotAssembly(budget);
    expect(first.add('a', chunk(0, false), 20).kind).toBe('more');
    expect(second.add('c', chunk(0, false), 10)).toEqual({ kind: 'refused', reason: 'too_large' });
    first.release();
    first.release();
    expect(budget.used).toBe(0);
    expect(second.add('c', chunk(0, true), 10).kind).toBe('complete');
    expect(budget.used).toBe(10);
  });
});
