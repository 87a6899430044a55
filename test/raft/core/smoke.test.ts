// Temporary smoke test.
import { describe, expect, it } from 'vitest';
import { Cluster } from './cluster.js';

describe('smoke', () => {
  it('elects and replicates', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    c.propose('a', 'y');
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
    c.tickAll(30);
    expect(c.leader()).toBe('a');
  });
  it('elects with prevote + checkquorum via ticks', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    c.tickAll(25);
    expect(c.leaders().length).toBe(1);
    const l = c.leader()!;
    c.propose(l, 'x');
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x']);
  });
});
