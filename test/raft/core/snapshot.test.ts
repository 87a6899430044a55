// Snapshot install on a follower (Raft paper §7): a snapshot replaces the log only when the log does not
// already hold the snapshot's last entry. Regression test for a bug the simulator found (seed 110 and
// five others): a delayed snapshot at an index the follower already held made it drop the entries after
// that index, though it had acknowledged them; the leader, whose match for it never goes down, neither
// resent them nor stopped counting them toward quorum, so the group stalled and a committed entry could
// be lost.

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../../raft/core/types.js';
import { Cluster, isType } from './cluster.js';

describe('snapshot install (Raft §7)', () => {
  it('keeps entries past a snapshot whose last entry the follower already holds (fast-forward)', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    const a = c.node('a');
    const base = a.status().commit;
    expect(a.propose(new TextEncoder().encode('x')).ok).toBe(true);
    expect(a.propose(new TextEncoder().encode('y')).ok).toBe(true);
    c.processAll();
    c.deliverQueued();
    // b holds base+1 and base+2 and acknowledges them, but hears nothing more from the leader.
    c.filter = (m) => m.to !== 'b';
    c.stabilize();
    const b = c.node('b');
    expect(b.status()).toMatchObject({ lastIndex: base + 2, commit: base });
    expect(a.status().progress?.b?.match).toBe(base + 2);

    // A delayed snapshot at base+1 (the leader's state when it sent it) arrives.
    const term = a.status().term;
    b.step({
      type: MessageType.Snap,
      from: 'a',
      to: 'b',
      term,
      snapshot: { index: base + 1, term, conf: { voters: ['a', 'b', 'c'], learners: [] } },
    });
    const ready = c.processReady('b');
    expect(ready?.snapshot).toBeUndefined();
    expect(b.status()).toMatchObject({ lastIndex: base + 2, commit: base + 1 });
    expect(c.take(isType(MessageType.AppResp, 'a')).map((m) => m.reject ?? false)).toEqual([false]);

    // Everything converges: b applies both entries from its own log.
    c.heal();
    c.tickAll(5);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
  });

  it('replaces a log that does not hold the snapshot point', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.isolate('c');
    for (const value of ['x', 'y', 'z']) c.propose('a', value);
    c.compact('a');
    c.heal();
    c.tickAll(10);
    // c was behind the compaction point: it got the snapshot, then the rest.
    expect(c.disk('c').snapshot.index).toBe(c.disk('a').snapshot.index);
    expect(c.node('c').status().commit).toBe(c.node('a').status().commit);
  });
});
