// Proves each checker catches the violation it names and stays quiet on a correct history: synthetic
// observations (leaders per term, logs, applied records, acknowledgements, reads) are fed to the
// SafetyChecker and the violations it reports are compared with what was planted.

import { describe, expect, it } from 'vitest';
import type { GroupStatus } from '../../../raft/api.js';
import type { NodeId, Role, Term } from '../../../raft/core/types.js';
import { SafetyChecker, type LogView } from './checkers.js';
import { encodeProposal, type AppliedRecord, type RecordResult } from './recording-state-machine.js';

const status = (id: NodeId, term: Term, role: Role, leader: NodeId | null = null): GroupStatus => ({
  group: 0,
  id,
  term,
  vote: null,
  role,
  leader,
  commit: 0,
  commitTerm: 0,
  applied: 0,
  firstIndex: 1,
  lastIndex: 0,
  conf: { voters: ['a', 'b', 'c'], learners: [] },
  leadTransferee: null,
});

/** A log with entry terms `terms[i]` at index `first + i`. */
const log = (terms: readonly Term[], first = 1): LogView => ({
  firstIndex: first,
  lastIndex: first + terms.length - 1,
  termAt: (index) => terms[index - first],
});

const record = (index: number, term: Term, proposalId: string): AppliedRecord => ({
  index,
  term,
  data: encodeProposal(proposalId),
});

const ok = (index: number, seq: number, proposalId: string) => ({
  ok: true as const,
  index,
  result: { seq, index, proposalId } satisfies RecordResult,
});

const invariants = (checker: SafetyChecker): string[] => checker.violations.map((v) => v.invariant);

describe('SafetyChecker', () => {
  it('accepts a correct history', () => {
    const checker = new SafetyChecker();
    checker.observeStatus('a', status('a', 2, 'leader'));
    checker.observeStatus('b', status('b', 2, 'follower', 'a'));
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1'), record(3, 2, 'p2')]);
    checker.observeOutcome('a', 0, 'p1', ok(2, 0, 'p1'));
    checker.observeApplied('b', 0, 0, [record(2, 2, 'p1')]);
    checker.observeApplied('b', 0, 1, [record(3, 2, 'p2')]);
    checker.endStep(() => log([1, 2, 2]));
    checker.observeStatus('b', status('b', 3, 'leader'));
    checker.endStep(() => log([1, 2, 2, 3]));
    checker.checkLogMatching(
      0,
      new Map([
        ['a', log([1, 2, 2])],
        ['b', log([1, 2, 2, 3])],
      ]),
    );
    checker.checkRead('b', 0, checker.readBarrier(0), 3);
    checker.checkAcknowledgedApplied();
    expect(checker.violations).toEqual([]);
  });

  it('reports two leaders in one term (election safety)', () => {
    const checker = new SafetyChecker();
    checker.observeStatus('a', status('a', 4, 'leader'));
    checker.observeStatus('b', status('b', 4, 'leader'));
    expect(invariants(checker)).toEqual(['election-safety']);
  });

  it('reports logs that share an (index, term) but differ below it (log matching)', () => {
    const checker = new SafetyChecker();
    checker.checkLogMatching(
      0,
      new Map([
        ['a', log([1, 1, 2, 3])],
        ['b', log([1, 2, 2, 3, 3])],
      ]),
    );
    expect(invariants(checker)).toEqual(['log-matching']);
    const fine = new SafetyChecker();
    fine.checkLogMatching(
      0,
      new Map([
        ['a', log([1, 1, 2])],
        ['b', log([1, 1, 3, 3])],
        ['c', log([3], 3)],
      ]),
    );
    expect(fine.violations).toEqual([]);
  });

  it('reports a later leader missing a committed entry (leader completeness)', () => {
    const checker = new SafetyChecker();
    checker.observeStatus('a', status('a', 2, 'leader'));
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1')]);
    checker.endStep(() => log([1, 2]));
    checker.observeStatus('c', status('c', 3, 'leader'));
    checker.endStep((node) => (node === 'c' ? log([1, 1]) : log([1, 2])));
    expect(invariants(checker)).toEqual(['leader-completeness']);
  });

  it('does not hold a leader of the committing term itself to completeness', () => {
    const checker = new SafetyChecker();
    checker.observeStatus('a', status('a', 2, 'leader'));
    checker.observeApplied('b', 0, 0, [record(2, 2, 'p1')]);
    checker.observeStatus('b', status('b', 2, 'follower', 'a'));
    checker.endStep(() => log([1]));
    expect(checker.violations).toEqual([]);
  });

  it('reports replicas that applied different entries at one sequence number', () => {
    const checker = new SafetyChecker();
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1')]);
    checker.observeApplied('b', 0, 0, [record(2, 3, 'p9')]);
    expect(invariants(checker)).toEqual(['applied-prefix']);
  });

  it('names a replaced entry that was acknowledged a lost acknowledged proposal', () => {
    const checker = new SafetyChecker();
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1')]);
    checker.observeOutcome('a', 0, 'p1', ok(2, 0, 'p1'));
    checker.forgetReplica('a', 0);
    checker.observeLoaded('a', 0, []);
    checker.observeApplied('b', 0, 0, [record(2, 3, 'p2')]);
    expect(invariants(checker)).toEqual(['acknowledged-lost']);
    expect(checker.violations[0]?.detail).toMatch(/p1 was acknowledged by a/);
  });

  it('reports a proposal applied at two places, and a replica skipping ahead', () => {
    const twice = new SafetyChecker();
    twice.observeApplied('a', 0, 0, [record(2, 2, 'p1'), record(3, 2, 'p1')]);
    expect(invariants(twice)).toEqual(['applied-twice']);
    const gap = new SafetyChecker();
    gap.observeApplied('a', 0, 0, [record(2, 2, 'p1')]);
    gap.observeApplied('a', 0, 2, [record(4, 2, 'p3')]);
    expect(invariants(gap)).toContain('applied-prefix');
  });

  it('reports an acknowledgement carrying another entry result', () => {
    const checker = new SafetyChecker();
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1'), record(3, 2, 'p2')]);
    checker.observeOutcome('a', 0, 'p2', ok(2, 0, 'p1'));
    expect(invariants(checker)).toEqual(['ack-mismatch']);
  });

  it('reports a read served before the replica applied an earlier acknowledged proposal', () => {
    const checker = new SafetyChecker();
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1'), record(3, 2, 'p2')]);
    checker.observeOutcome('a', 0, 'p2', ok(3, 1, 'p2'));
    checker.observeApplied('b', 0, 0, [record(2, 2, 'p1')]);
    checker.checkRead('b', 0, checker.readBarrier(0), 3);
    expect(invariants(checker)).toEqual(['stale-read']);
  });

  it('lists what keeps a cluster from convergence', () => {
    const checker = new SafetyChecker();
    checker.observeApplied('a', 0, 0, [record(2, 2, 'p1')]);
    const gaps = checker.convergenceGaps(
      [0],
      () => [status('a', 2, 'leader', 'a'), status('b', 2, 'follower', 'a'), status('c', 3, 'candidate')],
      () =>
        new Map([
          ['a', [record(2, 2, 'p1')]],
          ['b', []],
        ]),
    );
    expect(gaps).toEqual(['group 0: c do not follow a', 'group 0: b holds 0 of 1 applied records']);
  });
});
