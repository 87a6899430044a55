// Proves Raft's safety properties hold under arbitrary interleavings: fast-check drives 3–5 real
// RawNodes through random ticks, proposals, Ready processing, crashes and message drops, duplicates and
// reorders, checking after every action election safety, log matching, leader completeness and that a
// committed entry never changes; then heals the network and demands the cluster converges.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry, NodeId, Term } from '../../../raft/core/types.js';
import { Cluster, bytes, text } from './cluster.js';

type Action =
  | { readonly kind: 'tick'; readonly node: number }
  | { readonly kind: 'tickAll' }
  | { readonly kind: 'readyAll' }
  | { readonly kind: 'deliverAll' }
  | { readonly kind: 'deliver'; readonly pick: number }
  | { readonly kind: 'drop'; readonly pick: number }
  | { readonly kind: 'duplicate'; readonly pick: number }
  | { readonly kind: 'propose'; readonly node: number }
  | { readonly kind: 'restart'; readonly node: number }
  | { readonly kind: 'isolate'; readonly node: number }
  | { readonly kind: 'heal' };

const node = fc.nat(4);
const pick = fc.nat(1000);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('tick' as const), node }) },
  { weight: 12, arbitrary: fc.constant({ kind: 'tickAll' as const }) },
  { weight: 25, arbitrary: fc.constant({ kind: 'readyAll' as const }) },
  { weight: 12, arbitrary: fc.constant({ kind: 'deliverAll' as const }) },
  { weight: 15, arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('drop' as const), pick }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), pick }) },
  { weight: 15, arbitrary: fc.record({ kind: fc.constant('propose' as const), node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('isolate' as const), node }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'heal' as const }) },
);

const scenarioArb = fc.record({
  size: fc.integer({ min: 3, max: 5 }),
  preVote: fc.boolean(),
  checkQuorum: fc.boolean(),
  seed: fc.nat(1_000_000),
  actions: fc.array(actionArb, { minLength: 100, maxLength: 400, size: 'max' }),
});

interface Committed {
  readonly term: Term;
  readonly value: string;
}

interface CommittedEntry extends Committed {
  /**
   * No smaller than the term the entry was committed in: the highest term any node had reached when
   * the entry was first seen applied. Leaders of later terms must hold it (§5.4); a stale leader of an
   * earlier term, still leading because nothing told it otherwise, need not.
   */
  readonly commitTermBound: Term;
}

const describeEntry = (entry: Entry): Committed => ({ term: entry.term, value: text(entry.data) });

class SafetyChecker {
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  /** Every entry some node applied (hence committed), by index. */
  readonly committed = new Map<number, CommittedEntry>();
  private readonly appliedSeen = new Map<NodeId, number>();

  constructor(private readonly cluster: Cluster) {}

  check(): void {
    this.checkElectionSafety();
    this.checkCommittedNeverChange();
    this.checkLogMatching();
    this.checkLeaderCompleteness();
  }

  /** §5.2 Election safety: at most one leader can be elected in a given term. */
  private checkElectionSafety(): void {
    for (const id of this.cluster.leaders()) {
      const { term } = this.cluster.node(id).status();
      const known = this.leaderOfTerm.get(term);
      expect(known === undefined || known === id, `two leaders in term ${term}: ${known} and ${id}`).toBe(
        true,
      );
      this.leaderOfTerm.set(term, id);
    }
  }

  /** §5.4 State machine safety: an index applied anywhere holds the same entry everywhere, forever. */
  private checkCommittedNeverChange(): void {
    for (const id of this.cluster.ids) {
      const applied = this.cluster.disk(id).appliedEntries;
      for (let i = this.appliedSeen.get(id) ?? 0; i < applied.length; i++) {
        const entry = applied[i] as Entry;
        const seen = this.committed.get(entry.index);
        if (seen === undefined) {
          this.committed.set(entry.index, { ...describeEntry(entry), commitTermBound: this.maxTerm() });
        } else {
          const { term, value } = seen;
          expect(describeEntry(entry), `${id} applied a different entry at ${entry.index}`).toEqual({
            term,
            value,
          });
        }
      }
      this.appliedSeen.set(id, applied.length);
    }
  }

  /** §5.3 Log matching: same index and term means identical logs up to that index. */
  private checkLogMatching(): void {
    const ids = this.cluster.ids;
    for (let a = 0; a < ids.length; a++) {
      for (let b = a + 1; b < ids.length; b++) {
        this.checkPair(ids[a] as NodeId, ids[b] as NodeId);
      }
    }
  }

  private checkPair(a: NodeId, b: NodeId): void {
    const logA = this.cluster.disk(a).entries;
    const logB = this.cluster.disk(b).entries;
    const byIndexB = new Map(logB.map((e) => [e.index, e]));
    let matched = false;
    for (let i = logA.length - 1; i >= 0; i--) {
      const entryA = logA[i] as Entry;
      const entryB = byIndexB.get(entryA.index);
      if (entryB === undefined) continue;
      if (!matched && entryA.term === entryB.term) matched = true;
      if (matched) {
        expect(describeEntry(entryB), `logs of ${a} and ${b} diverge at ${entryA.index}`).toEqual(
          describeEntry(entryA),
        );
      }
    }
  }

  /** §5.4 Leader completeness: the leader of a term holds every entry committed in an earlier term. */
  private checkLeaderCompleteness(): void {
    for (const id of this.cluster.leaders()) {
      const node = this.cluster.node(id);
      const { term } = node.status();
      for (const [index, entry] of this.committed) {
        if (term <= entry.commitTermBound) continue;
        expect(node.termAt(index), `leader ${id} of term ${term} misses committed entry ${index}`).toBe(
          entry.term,
        );
      }
    }
  }

  private maxTerm(): Term {
    return Math.max(...this.cluster.ids.map((id) => this.cluster.node(id).status().term));
  }
}

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function run(scenario: Scenario): void {
  const ids = ['n1', 'n2', 'n3', 'n4', 'n5'].slice(0, scenario.size);
  const cluster = new Cluster(ids, {
    preVote: scenario.preVote,
    checkQuorum: scenario.checkQuorum,
    seed: scenario.seed,
    electionTicks: 5,
    heartbeatTicks: 1,
    inflightMsgsMax: 4,
    msgBytesMax: 16,
  });
  const checker = new SafetyChecker(cluster);
  const idAt = (n: number): NodeId => ids[n % ids.length] as NodeId;
  let proposals = 0;
  for (const action of scenario.actions) {
    const queue = cluster.queue;
    switch (action.kind) {
      case 'tick':
        cluster.tick(idAt(action.node));
        break;
      case 'tickAll':
        for (const id of ids) cluster.tick(id);
        break;
      case 'readyAll':
        for (const id of ids) cluster.processReady(id);
        break;
      case 'deliverAll':
        cluster.deliverQueued();
        break;
      case 'deliver':
      case 'drop':
      case 'duplicate': {
        const at = queue.length === 0 ? -1 : action.pick % queue.length;
        const message = queue[at];
        if (message === undefined) break;
        if (action.kind !== 'duplicate') queue.splice(at, 1);
        if (action.kind !== 'drop') cluster.deliver(message);
        break;
      }
      case 'propose':
        cluster.node(idAt(action.node)).propose(bytes(`p${proposals++}`));
        break;
      case 'restart':
        cluster.restart(idAt(action.node));
        break;
      case 'isolate':
        cluster.isolate(idAt(action.node));
        break;
      case 'heal':
        cluster.heal();
        break;
    }
    checker.check();
  }
  convergeAfterHealing(cluster, checker);
}

/**
 * With every fault gone, a leader emerges and every node applies the same log, including a new entry.
 * An election may still disrupt the first attempt (a node that missed the leader times out), so the
 * entry is re-proposed once per new leader term until it is applied everywhere.
 */
function convergeAfterHealing(cluster: Cluster, checker: SafetyChecker): void {
  cluster.heal();
  let proposedInTerm = -1;
  for (let i = 0; i < 300; i++) {
    cluster.tickAll();
    checker.check();
    const leader = cluster.leader();
    if (leader === undefined) continue;
    const { term } = cluster.node(leader).status();
    if (term !== proposedInTerm && cluster.node(leader).propose(bytes('final')).ok) {
      proposedInTerm = term;
      cluster.stabilize();
    }
    if (converged(cluster)) return;
  }
  const applied = cluster.ids.map((id) => `${id}: ${cluster.appliedValues(id).join(',')}`);
  expect.fail(`cluster did not converge after healing:\n${applied.join('\n')}`);
}

function converged(cluster: Cluster): boolean {
  const [first, ...rest] = cluster.ids.map((id) => cluster.appliedValues(id).join(','));
  return (
    first !== undefined && first.split(',').includes('final') && rest.every((values) => values === first)
  );
}

describe('raft safety under random faults (fast-check)', () => {
  it('keeps election safety, log matching, leader completeness and committed entries', () => {
    fc.assert(
      fc.property(scenarioArb, (scenario) => run(scenario)),
      { numRuns: 150 },
    );
  });
});
