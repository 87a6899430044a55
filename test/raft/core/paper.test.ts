// The Raft paper's rules one by one (§5.1, §5.3, §5.4.2) and the thesis' extensions the core implements
// (§4.1 single-server membership changes with learners, §6.4 ReadIndex, §3.10 leadership transfer, §6.2
// check-quorum), each on real RawNodes in the in-process Cluster. Scenarios that need a particular history
// (divergent logs, the Figure 8 interleaving) seed each node's disk and restart it, exactly as a crash
// and recovery would, rather than poking at private state.

import { describe, expect, it } from 'vitest';
import { EntryKind, MessageType, type Entry, type Message } from '../../../raft/core/types.js';
import { Cluster, bytes, isType } from './cluster.js';

/** A log whose entry i+1 has term terms[i]; data names the term and index so entries are told apart. */
const logOf = (terms: readonly number[]): Entry[] =>
  terms.map((term, i) => ({ term, index: i + 1, kind: EntryKind.Normal, data: bytes(`t${term}i${i + 1}`) }));

/** Rewrites `id`'s disk as if it had crashed holding this log and hard state, and restarts it from there. */
function seed(c: Cluster, id: string, terms: readonly number[], term: number, commit = 0): void {
  const disk = c.disk(id);
  disk.entries = logOf(terms);
  disk.hardState = { term, vote: null, commit };
  c.restart(id);
}

const app = (from: string, to: string, term: number, prev: [number, number], entries: Entry[], commit = 0) =>
  ({
    type: MessageType.App,
    from,
    to,
    term,
    index: prev[0],
    logTerm: prev[1],
    entries,
    commit,
  }) satisfies Message;

/** The terms of `id`'s log, index 1 .. lastIndex. */
function termsOf(c: Cluster, id: string): (number | undefined)[] {
  const node = c.node(id);
  const out: (number | undefined)[] = [];
  for (let i = 1; i <= node.status().lastIndex; i++) out.push(node.termAt(i));
  return out;
}

describe('§5.3 log replication', () => {
  it('§5.3: a follower rejects AppendEntries whose prevLogIndex/prevLogTerm do not match its log', () => {
    const c = new Cluster(['a', 'b']);
    seed(c, 'b', [1, 2], 2);
    c.processAll();
    c.queue = [];
    const b = c.node('b');
    // Same index, different term.
    b.step(app('a', 'b', 3, [2, 3], logOf([1, 3, 3]).slice(2)));
    // An index beyond b's log.
    b.step(app('a', 'b', 3, [5, 3], []));
    c.processReady('b');
    const answers = c.take(isType(MessageType.AppResp, 'a'));
    expect(answers).toHaveLength(2);
    expect(answers.every((m) => m.reject === true)).toBe(true);
    // The hint points the leader at b's last index, not past it.
    expect(answers[1]?.rejectHint).toBe(2);
    // Nothing was appended.
    expect(termsOf(c, 'b')).toEqual([1, 2]);
    expect(c.disk('b').entries.map((e) => e.term)).toEqual([1, 2]);
  });

  it('§5.3: a conflicting uncommitted entry and all that follow it are replaced; a matching one is kept', () => {
    const c = new Cluster(['a', 'b']);
    seed(c, 'b', [1, 1, 1], 1, 1);
    c.processAll();
    const b = c.node('b');
    // A retransmission of entries b already has (same index and term) must not truncate its tail.
    b.step(app('a', 'b', 1, [1, 1], logOf([1, 1]).slice(1), 1));
    c.processReady('b');
    expect(termsOf(c, 'b')).toEqual([1, 1, 1]);
    // A new leader's entry at index 2 of term 2 conflicts: indexes 2.. of term 1 go.
    const fresh: Entry = { term: 2, index: 2, kind: EntryKind.Normal, data: bytes('new') };
    b.step(app('a', 'b', 2, [1, 1], [fresh], 1));
    const ready = c.processReady('b');
    expect(ready?.entries.map((e) => [e.index, e.term])).toEqual([[2, 2]]);
    expect(termsOf(c, 'b')).toEqual([1, 2]);
    expect(c.disk('b').entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    const ack = c.take(isType(MessageType.AppResp, 'a')).pop();
    expect(ack).toMatchObject({ index: 2, term: 2 });
    expect(ack?.reject).not.toBe(true);
  });

  it("§5.3: a follower's commit follows leaderCommit only up to the index of its last new entry", () => {
    const c = new Cluster(['a', 'b']);
    // b holds a stale tail (indexes 2, 3 of term 1) that the new leader may not share.
    seed(c, 'b', [1, 1, 1], 1);
    c.processAll();
    const b = c.node('b');
    // Leader of term 2 has committed 3 (its own entries), but this App only proves index 1 matches.
    b.step(app('a', 'b', 2, [1, 1], [], 3));
    c.processAll();
    expect(b.status().commit).toBe(1);
    // Now index 2 is proven (sent with the App): commit = min(leaderCommit 3, last new entry 2).
    b.step(app('a', 'b', 2, [1, 1], logOf([1, 1]).slice(1), 3));
    c.processAll();
    expect(b.status().commit).toBe(2);
    expect(c.disk('b').hardState.commit).toBe(2);
  });

  it('§5.3: the leader backs up nextIndex on rejection and repairs a divergent follower log', () => {
    // a took entries 3..5 in term 2 that never committed; b and c hold entries 3..4 of term 3 instead.
    const c = new Cluster(['a', 'b', 'c']);
    seed(c, 'a', [1, 1, 2, 2, 2], 2, 2);
    seed(c, 'b', [1, 1, 3, 3], 3, 2);
    seed(c, 'c', [1, 1, 3, 3], 3, 2);
    c.processAll();
    c.queue = [];
    expect(c.elect('b')).toBe(true);
    // b's first App to a checks index 4 (term 3): a rejects; b walks back to the common prefix at index 2.
    const rejections = c.sent.filter((m) => m.type === MessageType.AppResp && m.from === 'a' && m.reject);
    expect(rejections.length).toBeGreaterThan(0);
    const repairs = c.sent.filter(
      (m) => m.type === MessageType.App && m.from === 'b' && m.to === 'a' && m.index === 2 && m.logTerm === 1,
    );
    expect(repairs.length).toBeGreaterThan(0);
    expect(termsOf(c, 'a')).toEqual([1, 1, 3, 3, 4]);
    expect(termsOf(c, 'a')).toEqual(termsOf(c, 'b'));
    expect(c.disk('a').entries.map((e) => e.term)).toEqual([1, 1, 3, 3, 4]);
    expect(c.node('b').status().progress?.['a']?.match).toBe(5);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['t1i1', 't1i2', 't3i3', 't3i4']);
  });
});

describe('§5.3 commit propagation', () => {
  it('§5.3: a new commit index alone sends nothing; the next App or heartbeat carries it to followers', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.tickAll(1);
    const before = c.sent.length;
    c.propose('a', 'x');
    // One App to each follower and one answer from each: no second round only to announce the commit.
    const round = c.sent.slice(before);
    expect(round.map((m) => [m.type, m.from, m.to])).toEqual([
      [MessageType.App, 'a', 'b'],
      [MessageType.App, 'a', 'c'],
      [MessageType.AppResp, 'b', 'a'],
      [MessageType.AppResp, 'c', 'a'],
    ]);
    expect(c.appliedValues('a')).toEqual(['x']);
    expect(c.appliedValues('b')).toEqual([]);
    // The next App carries x's commit ...
    c.propose('a', 'y');
    expect(c.appliedValues('b')).toEqual(['x']);
    // ... and an idle group's next heartbeat carries y's.
    c.tickAll(1);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
  });
});

describe('§5.4.2 committing entries from previous terms', () => {
  it('§5.4.2 (Figure 8): a leader does not commit a previous-term entry by counting replicas, only through a current-term entry', () => {
    // Five servers in Figure 8 (c): S1=a led term 2 and put index 2 on S2=b; S5=e led term 3 and put a
    // different index 2 on itself only. a now wins term 4 (votes a, b, c) and brings index 2 to c.
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], { msgBytesMax: 1, preVote: true });
    seed(c, 'a', [1, 2], 3, 1);
    seed(c, 'b', [1, 2], 3, 1);
    seed(c, 'c', [1], 3, 1);
    seed(c, 'd', [1], 3, 1);
    seed(c, 'e', [1, 3], 3, 1);
    c.processAll();
    c.queue = [];
    c.isolate('d');
    c.isolate('e');
    // Let c receive the term-2 entry but not yet a's term-4 no-op (index 3).
    // (a's probe, which c rejects, passes; once c holds index 2 (msgBytesMax sends one entry per App), the
    // no-op is held back.)
    c.filter = (m) =>
      !(
        m.type === MessageType.App &&
        m.to === 'c' &&
        c.node('c').termAt(2) === 2 &&
        (m.entries ?? []).some((e) => e.index >= 3)
      );
    expect(c.elect('a')).toBe(true);
    expect(c.node('a').status().term).toBe(4);
    for (const id of ['a', 'b', 'c']) expect(c.node(id).termAt(2)).toBe(2);
    expect(c.node('c').termAt(3)).toBeUndefined();
    // Index 2 is on a majority (a, b, c) but is of term 2: counting replicas must not commit it, since e
    // (last term 3) could still win votes from b, c and d and overwrite it.
    expect(c.node('a').status().progress?.['c']?.match).toBe(2);
    expect(c.node('a').status().commit).toBe(1);
    for (const id of c.ids) expect(c.node(id).status().commit).toBe(1);
    // Once the term-4 no-op reaches the majority, it commits, and index 2 with it.
    c.heal();
    c.isolate('d');
    c.isolate('e');
    c.tickAll(3);
    expect(c.node('a').status().commit).toBe(3);
    expect(c.disk('a').appliedEntries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 4],
    ]);
    // e's conflicting index 2 (term 3) is overwritten once it hears from the leader.
    c.heal();
    c.tickAll(5);
    expect(c.node('e').termAt(2)).toBe(2);
    expect(c.leader()).toBe('a');
  });
});

describe('§5.1 terms', () => {
  it('§5.1: a leader with a stale term steps down on seeing a higher term; its stale-term entries never commit', () => {
    // Pre-vote makes followers answer a stale-term App with their term (etcd), instead of ignoring it.
    const c = new Cluster(['a', 'b', 'c'], { preVote: true });
    expect(c.elect('a')).toBe(true);
    c.isolate('a');
    expect(c.elect('b')).toBe(true);
    const term = c.node('b').status().term;
    expect(c.node('a').status().role).toBe('leader');
    // a still believes it leads term 1 and takes a proposal.
    const stale = c.node('a').propose(bytes('stale'));
    expect(stale.ok).toBe(true);
    c.heal();
    c.stabilize();
    // b and c reject a's term-1 App by answering with their term; a steps down to follower of that term.
    const answers = c.sent.filter((m) => m.type === MessageType.AppResp && m.to === 'a' && m.term === term);
    expect(answers.length).toBeGreaterThan(0);
    expect(c.node('a').status()).toMatchObject({ role: 'follower', term });
    c.tickAll(3);
    expect(c.leader()).toBe('b');
    expect(c.node('a').status().leader).toBe('b');
    for (const id of c.ids) expect(c.appliedValues(id)).not.toContain('stale');
  });

  it('§5.1: a node rejects AppendEntries and vote requests carrying a lower term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    seed(c, 'b', [1, 5], 5, 1);
    c.processAll();
    c.queue = [];
    const b = c.node('b');
    b.step(app('a', 'b', 3, [2, 5], logOf([1, 5, 3]).slice(2), 3));
    b.step({ type: MessageType.Vote, from: 'c', to: 'b', term: 4, index: 9, logTerm: 4 });
    c.processAll();
    // Neither appended, committed, voted nor granted anything, and its term stays.
    expect(b.status()).toMatchObject({ term: 5, vote: null, lastIndex: 2, commit: 1, leader: null });
    // No vote granted and no append acknowledged; any answer (there is none without pre-vote or
    // check-quorum) could only carry b's own term.
    const fromB = c.queue.filter((m) => m.from === 'b');
    expect(fromB.filter((m) => m.type === MessageType.VoteResp && m.reject !== true)).toEqual([]);
    expect(fromB.filter((m) => m.type === MessageType.AppResp && m.index !== undefined)).toEqual([]);
    expect(fromB.every((m) => m.term === 5)).toBe(true);
  });
});

describe('thesis §4.1 membership changes (single-server, with learners)', () => {
  it('thesis §4.1: after a voter is removed, its vote no longer counts toward a majority', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    const result = c.node('a').proposeConfChange({ type: 'remove', node: 'c' });
    expect(result.ok).toBe(true);
    c.stabilize();
    expect(c.node('a').status().conf.voters).toEqual(['a', 'b']);
    // A commit alone sends nothing: followers learn it from the next heartbeat.
    c.tickAll(1);
    expect(c.node('b').status().conf.voters).toEqual(['a', 'b']);
    // b campaigns without a: c would grant its vote, but {b, c} is no majority of {a, b}.
    c.cut('a', 'b');
    c.node('b').campaign();
    c.processAll();
    const term = c.node('b').status().term;
    // b asks only the voters of its configuration ...
    expect(c.queue.filter((m) => m.type === MessageType.Vote).map((m) => m.to)).toEqual(['a']);
    // ... and a grant from the removed c (say, answering an older request) is not counted.
    c.node('b').step({ type: MessageType.VoteResp, from: 'c', to: 'b', term, reject: false });
    c.stabilize();
    expect(c.node('b').status().role).not.toBe('leader');
    // And a leader of {a, b} commits without c.
    c.heal();
    c.isolate('c');
    c.tickAll(30);
    const leader = c.leader() as string;
    expect(['a', 'b']).toContain(leader);
    c.propose(leader, 'after');
    c.tickAll(1);
    expect(c.appliedValues('a')).toContain('after');
    expect(c.appliedValues('b')).toContain('after');
  });

  it('thesis §4.1: one membership change at a time, and none before the leader commits an entry of its term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    c.filter = (m) => m.type !== MessageType.App;
    c.node('a').campaign();
    c.stabilize();
    expect(c.node('a').status().role).toBe('leader');
    // Its no-op is not committed yet.
    expect(c.node('a').proposeConfChange({ type: 'add_learner', node: 'd' })).toEqual({
      ok: false,
      code: 'CONF_CHANGE_PENDING',
    });
    c.heal();
    c.tickAll(2);
    c.addNode('d');
    const first = c.node('a').proposeConfChange({ type: 'add_learner', node: 'd' });
    expect(first.ok).toBe(true);
    // The first is not applied yet: a second is refused.
    expect(c.node('a').proposeConfChange({ type: 'remove', node: 'c' })).toEqual({
      ok: false,
      code: 'CONF_CHANGE_PENDING',
    });
    c.stabilize();
    expect(c.node('a').status().conf).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
    expect(c.node('a').proposeConfChange({ type: 'remove', node: 'c' }).ok).toBe(true);
  });

  it('thesis §4.1 (learners): a learner replicates the log but does not count toward commit', () => {
    const c = new Cluster(['a', 'b', 'c'], {}, ['d']);
    expect(c.elect('a')).toBe(true);
    const commit = c.node('a').status().commit;
    c.cut('a', 'b');
    c.cut('a', 'c');
    c.node('a').propose(bytes('x'));
    c.stabilize();
    // a and d hold x: two of four nodes, but only one of three voters.
    expect(c.node('d').status().lastIndex).toBe(c.node('a').status().lastIndex);
    expect(c.node('a').status().commit).toBe(commit);
    c.heal();
    c.tickAll(2);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x']);
  });
});

describe('thesis §6.4 linearizable reads (ReadIndex)', () => {
  it('thesis §6.4: the leader serves a read only after a quorum acknowledges a heartbeat round', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    const commit = c.node('a').status().commit;
    expect(c.node('a').readIndex(7)).toEqual({ ok: true });
    c.processAll();
    expect(c.disk('a').readStates).toEqual([]);
    const beats = c.take(isType(MessageType.Heartbeat));
    expect(beats.map((m) => m.to).sort()).toEqual(['b', 'c']);
    expect(beats.every((m) => m.context !== undefined)).toBe(true);
    // c's answer is lost; only b acknowledges. With a itself that is a majority of three.
    c.queue = [];
    c.deliver(beats.find((m) => m.to === 'b') as Message);
    c.processAll();
    expect(c.disk('a').readStates).toEqual([]);
    for (const m of c.take(isType(MessageType.HeartbeatResp, 'a'))) c.deliver(m);
    c.processAll();
    expect(c.disk('a').readStates).toEqual([{ index: commit, context: 7 }]);
  });

  it('thesis §6.4: a deposed leader that cannot reach a quorum never serves a read', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.isolate('a');
    expect(c.elect('b')).toBe(true);
    c.propose('b', 'newer');
    // a still believes it leads; its read must not be answered with its stale commit.
    expect(c.node('a').readIndex(1)).toEqual({ ok: true });
    c.tickAll(30);
    expect(c.disk('a').readStates).toEqual([]);
  });

  it("thesis §6.4: a follower's read index is the leader's commit, which it must apply before serving", () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    // b falls behind: it gets no entries.
    c.filter = (m) => !(m.type === MessageType.App && m.to === 'b');
    c.propose('a', 'x');
    const commit = c.node('a').status().commit;
    expect(c.disk('b').applied).toBeLessThan(commit);
    expect(c.node('b').readIndex(9)).toEqual({ ok: true });
    c.stabilize();
    expect(c.disk('b').readStates).toEqual([{ index: commit, context: 9 }]);
    // Serving now would miss x: the host must wait until applied >= index, which catching up gives.
    expect(c.disk('b').applied).toBeLessThan(commit);
    c.heal();
    c.tickAll(2);
    expect(c.disk('b').applied).toBeGreaterThanOrEqual(commit);
    expect(c.appliedValues('b')).toEqual(['x']);
  });

  it('thesis §6.4: a new leader answers no read until it has committed an entry of its own term', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    c.propose('a', 'x');
    // b wins term 2 but its no-op cannot replicate yet.
    c.filter = (m) => m.type !== MessageType.App;
    c.node('b').campaign();
    c.stabilize();
    expect(c.node('b').status().role).toBe('leader');
    const noop = c.node('b').status().lastIndex;
    expect(c.node('b').status().commit).toBeLessThan(noop);
    expect(c.node('b').readIndex(3)).toEqual({ ok: true });
    c.tickAll(5);
    expect(c.disk('b').readStates).toEqual([]);
    c.heal();
    c.tickAll(3);
    // The read index is at least the new term's no-op: it covers everything the old leader committed.
    expect(c.disk('b').readStates).toEqual([{ index: noop, context: 3 }]);
  });
});

describe('thesis §3.10 leadership transfer', () => {
  it('thesis §3.10: the target becomes leader; the old leader refuses proposals while transferring', () => {
    const c = new Cluster(['a', 'b', 'c']);
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    // b lags, so the transfer must first catch it up.
    c.filter = (m) => !(m.type === MessageType.App && m.to === 'b');
    c.propose('a', 'x');
    c.node('a').transferLeader('b');
    expect(c.node('a').status().leadTransferee).toBe('b');
    expect(c.node('a').propose(bytes('during'))).toEqual({ ok: false, code: 'TRANSFERRING' });
    c.heal();
    c.tickAll(2);
    expect(c.leader()).toBe('b');
    expect(c.node('b').status().term).toBe(term + 1);
    expect(c.node('a').status().role).toBe('follower');
    expect(c.sent.some((m) => m.type === MessageType.TimeoutNow && m.to === 'b')).toBe(true);
    expect(c.node('a').propose(bytes('late'))).toEqual({ ok: false, code: 'NOT_LEADER', leader: 'b' });
    c.propose('b', 'y');
    expect(c.appliedValues('b')).toEqual(['x', 'y']);
    // A commit alone sends nothing: followers learn it from the next heartbeat.
    c.tickAll(1);
    for (const id of c.ids) expect(c.appliedValues(id)).toEqual(['x', 'y']);
  });

  it('thesis §3.10: a transfer to an unreachable target is abandoned after an election timeout', () => {
    const c = new Cluster(['a', 'b', 'c'], { preVote: true, checkQuorum: true });
    expect(c.elect('a')).toBe(true);
    c.isolate('b');
    c.node('a').transferLeader('b');
    expect(c.node('a').propose(bytes('during')).ok).toBe(false);
    for (let i = 0; i < 10; i++) {
      c.tick('a');
      c.tick('c');
      c.stabilize();
    }
    expect(c.node('a').status()).toMatchObject({ role: 'leader', leadTransferee: null });
    expect(c.node('a').propose(bytes('after')).ok).toBe(true);
  });
});

describe('thesis §6.2 check-quorum', () => {
  it('thesis §6.2: a leader that hears from no majority for an election timeout steps down', () => {
    const c = new Cluster(['a', 'b', 'c'], { checkQuorum: true, preVote: true, electionTicks: 10 });
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    c.isolate('a');
    // Only a's clock runs: the first check may still see acks from before the cut, the second cannot.
    for (let i = 0; i < 20; i++) {
      c.tick('a');
      c.stabilize();
    }
    expect(c.node('a').status()).toMatchObject({ role: 'follower', term, leader: null });
    expect(c.node('a').propose(bytes('x')).ok).toBe(false);
  });

  it('thesis §6.2: a leader that hears from a majority (itself and one of two followers) stays', () => {
    const c = new Cluster(['a', 'b', 'c'], { checkQuorum: true, preVote: true, electionTicks: 10 });
    expect(c.elect('a')).toBe(true);
    const term = c.node('a').status().term;
    c.cut('a', 'c');
    c.tickAll(50);
    expect(c.node('a').status()).toMatchObject({ role: 'leader', term });
  });
});
