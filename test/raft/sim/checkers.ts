// The invariants the simulator checks after every step: Raft's election safety, log matching and leader
// completeness (Raft paper §5.2–5.4), identical applied prefixes on every replica, and that every
// acknowledged proposal is applied exactly once and never lost. Violations are collected, not thrown,
// so a run can report the first one with its step, or keep going to see what else broke.

import type { GroupStatus, ProposeOutcome } from '../../../raft/api.js';
import type { GroupId, Index, NodeId, Term } from '../../../raft/core/types.js';
import { proposalIdOf, type AppliedRecord, type RecordResult } from './recording-state-machine.js';

export type InvariantName =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'applied-prefix'
  | 'applied-twice'
  | 'acknowledged-lost'
  | 'ack-mismatch'
  | 'stale-read'
  | 'liveness'
  | 'host-error';

export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

/** A node's persisted log of one group, as far as the checkers need it. */
export interface LogView {
  /** The first index still in the log (entries before it were compacted into a snapshot). */
  readonly firstIndex: Index;
  readonly lastIndex: Index;
  termAt(index: Index): Term | undefined;
}

interface CanonicalRecord extends AppliedRecord {
  readonly group: GroupId;
  readonly proposalId: string | null;
  readonly firstSeenBy: NodeId;
  /**
   * A term no smaller than the term in which this entry was committed: the highest term any node of
   * the group had reached by the end of the step that first showed the entry applied. Leaders of
   * later terms must hold the entry.
   */
  commitTermBound: Term | undefined;
}

export interface Ack {
  readonly proposalId: string;
  readonly group: GroupId;
  readonly node: NodeId;
  readonly index: Index;
  readonly seq: number;
}

const replicaKey = (node: NodeId, group: GroupId): string => `${node}/${group}`;

const sameRecord = (a: AppliedRecord, b: AppliedRecord): boolean =>
  a.index === b.index && a.term === b.term && Buffer.from(a.data).equals(Buffer.from(b.data));

const describe = (record: AppliedRecord): string => {
  const proposalId = proposalIdOf(record.data);
  const what = proposalId === null ? `${record.data.length} bytes` : `proposal ${proposalId}`;
  return `(index ${record.index}, term ${record.term}, ${what})`;
};

export class SafetyChecker {
  readonly violations: InvariantViolation[] = [];
  /** Per group, the leader seen for each term. */
  private readonly leaders = new Map<GroupId, Map<Term, NodeId>>();
  private readonly maxTerms = new Map<GroupId, Term>();
  /** Per group, the applied sequence: the first replica to apply a sequence number defines it. */
  private readonly canonical = new Map<GroupId, CanonicalRecord[]>();
  private readonly seqOfProposal = new Map<string, number>();
  private readonly acks = new Map<string, Ack>();
  /** Per group, one past the highest applied sequence number of an acknowledged proposal. */
  private readonly readBarriers = new Map<GroupId, number>();
  /** How many records each replica is known to hold; absent while unknown (after crash or restore). */
  private readonly replicaCounts = new Map<string, number>();
  private unsealed: CanonicalRecord[] = [];
  private newLeaders: { readonly group: GroupId; readonly term: Term; readonly node: NodeId }[] = [];

  fail(invariant: InvariantName, detail: string): void {
    this.violations.push(new InvariantViolation(invariant, detail));
  }

  // ------------------------------------------------------------------------------------------
  // Applied records.

  /** `node` applied `records` to `group`, the first at sequence number `firstSeq`. */
  observeApplied(node: NodeId, group: GroupId, firstSeq: number, records: readonly AppliedRecord[]): void {
    const key = replicaKey(node, group);
    const held = this.replicaCounts.get(key);
    if (held !== undefined && held !== firstSeq) {
      this.fail(
        'applied-prefix',
        `${node} applied group ${group} from seq ${firstSeq} but held ${held} records`,
      );
    }
    records.forEach((record, offset) => this.observeRecord(node, group, firstSeq + offset, record));
    this.replicaCounts.set(key, firstSeq + records.length);
  }

  /**
   * Everything `node` holds for `group`, read back from its store. When the replica's holdings were
   * unknown (restart, restore) this defines them; otherwise apply may be ahead of the store (its
   * writes are persisted later), so only the contents are checked.
   */
  observeLoaded(node: NodeId, group: GroupId, records: readonly AppliedRecord[]): void {
    records.forEach((record, seq) => this.observeRecord(node, group, seq, record));
    const key = replicaKey(node, group);
    if (!this.replicaCounts.has(key)) this.replicaCounts.set(key, records.length);
  }

  /** The replica's holdings are unknown until `observeLoaded` (it crashed, or a snapshot replaced them). */
  forgetReplica(node: NodeId, group: GroupId): void {
    this.replicaCounts.delete(replicaKey(node, group));
  }

  private observeRecord(node: NodeId, group: GroupId, seq: number, record: AppliedRecord): void {
    const sequence = this.canonicalOf(group);
    const known = sequence[seq];
    if (known === undefined) {
      if (seq !== sequence.length) {
        this.fail(
          'applied-prefix',
          `${node} applied group ${group} seq ${seq}, but seq ${sequence.length} was never seen`,
        );
        return;
      }
      this.appendCanonical(node, group, record);
      return;
    }
    if (sameRecord(known, record)) return;
    const ack = known.proposalId === null ? undefined : this.acks.get(known.proposalId);
    const detail =
      `group ${group} seq ${seq}: ${node} applied ${describe(record)}, ` +
      `but ${known.firstSeenBy} applied ${describe(known)}`;
    if (ack !== undefined) {
      this.fail('acknowledged-lost', `${detail}; ${ack.proposalId} was acknowledged by ${ack.node}`);
    } else {
      this.fail('applied-prefix', detail);
    }
  }

  private appendCanonical(node: NodeId, group: GroupId, record: AppliedRecord): void {
    const sequence = this.canonicalOf(group);
    const proposalId = proposalIdOf(record.data);
    const canonical: CanonicalRecord = {
      ...record,
      group,
      proposalId,
      firstSeenBy: node,
      commitTermBound: undefined,
    };
    if (proposalId !== null) {
      const earlierSeq = this.seqOfProposal.get(proposalId);
      if (earlierSeq !== undefined) {
        this.fail(
          'applied-twice',
          `group ${group}: proposal ${proposalId} applied at seq ${earlierSeq} and again at seq ` +
            `${sequence.length} ${describe(record)} (first seen on ${node})`,
        );
      } else {
        this.seqOfProposal.set(proposalId, sequence.length);
      }
    }
    sequence.push(canonical);
    this.unsealed.push(canonical);
  }

  private canonicalOf(group: GroupId): CanonicalRecord[] {
    let sequence = this.canonical.get(group);
    if (sequence === undefined) {
      sequence = [];
      this.canonical.set(group, sequence);
    }
    return sequence;
  }

  // ------------------------------------------------------------------------------------------
  // Acknowledgements.

  /** A proposal made on `node` resolved with `outcome`. */
  observeOutcome(
    node: NodeId,
    group: GroupId,
    proposalId: string,
    outcome: ProposeOutcome<RecordResult>,
  ): void {
    if (!outcome.ok) return;
    const { result } = outcome;
    const where = `proposal ${proposalId} acknowledged by ${node} for group ${group} at index ${outcome.index}`;
    if (result.proposalId !== proposalId || result.index !== outcome.index) {
      this.fail(
        'ack-mismatch',
        `${where} carries the result of ${result.proposalId ?? 'a non-proposal'} at index ${result.index}`,
      );
      return;
    }
    const applied = this.canonicalOf(group)[result.seq];
    if (applied?.proposalId !== proposalId || applied.index !== outcome.index) {
      this.fail(
        'ack-mismatch',
        `${where}, but applied seq ${result.seq} of the group is ${applied === undefined ? 'unknown' : describe(applied)}`,
      );
      return;
    }
    if (this.acks.has(proposalId)) {
      this.fail('ack-mismatch', `${where}: acknowledged twice`);
      return;
    }
    this.acks.set(proposalId, { proposalId, group, node, index: outcome.index, seq: result.seq });
    this.readBarriers.set(group, Math.max(this.readBarrier(group), result.seq + 1));
  }

  get acknowledgedCount(): number {
    return this.acks.size;
  }

  /** How many applied records of `group` a read started now must see: all up to the last acknowledged. */
  readBarrier(group: GroupId): number {
    return this.readBarriers.get(group) ?? 0;
  }

  /**
   * A linearizable read on `node` resolved: the node must have applied every proposal acknowledged
   * before the read started (`barrier` from `readBarrier` at that time).
   */
  checkRead(node: NodeId, group: GroupId, barrier: number, readIndex: Index): void {
    const held = this.replicaCounts.get(replicaKey(node, group));
    if (held !== undefined && held < barrier) {
      this.fail(
        'stale-read',
        `${node} served a read of group ${group} at index ${readIndex} holding ${held} applied records, ` +
          `but ${barrier} were acknowledged before the read began`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // Roles and logs, once per step.

  observeStatus(node: NodeId, status: GroupStatus): void {
    const { group, term } = status;
    this.maxTerms.set(group, Math.max(this.maxTerms.get(group) ?? 0, term));
    if (status.role !== 'leader') return;
    let byTerm = this.leaders.get(group);
    if (byTerm === undefined) {
      byTerm = new Map();
      this.leaders.set(group, byTerm);
    }
    const known = byTerm.get(term);
    if (known === undefined) {
      byTerm.set(term, node);
      this.newLeaders.push({ group, term, node });
    } else if (known !== node) {
      this.fail('election-safety', `group ${group} term ${term} has two leaders: ${known} and ${node}`);
    }
  }

  /**
   * Close the step: bound the commit term of entries first applied in it, then check that each leader
   * first seen in it holds every entry committed in an earlier term.
   */
  endStep(logOf: (node: NodeId, group: GroupId) => LogView | undefined): void {
    for (const record of this.unsealed) record.commitTermBound = this.maxTerms.get(record.group) ?? 0;
    this.unsealed = [];
    for (const leader of this.newLeaders)
      this.checkLeaderCompleteness(leader, logOf(leader.node, leader.group));
    this.newLeaders = [];
  }

  private checkLeaderCompleteness(
    leader: { readonly group: GroupId; readonly term: Term; readonly node: NodeId },
    log: LogView | undefined,
  ): void {
    if (log === undefined) return;
    for (const record of this.canonicalOf(leader.group)) {
      if (record.commitTermBound === undefined || record.commitTermBound >= leader.term) continue;
      // A compacted entry lives in the leader's snapshot; the applied-prefix check covers it.
      if (record.index < log.firstIndex) continue;
      const term = log.termAt(record.index);
      if (term !== record.term) {
        this.fail(
          'leader-completeness',
          `group ${leader.group}: ${leader.node} leads term ${leader.term} but its log has ` +
            `${term === undefined ? 'no entry' : `term ${term}`} at index ${record.index}, where ` +
            `${describe(record)} was committed by term ${record.commitTermBound}`,
        );
      }
    }
  }

  /**
   * Log matching: if two logs hold an entry with the same index and term, they are identical up to it.
   * Checked pairwise from the highest common (index, term) down.
   */
  checkLogMatching(group: GroupId, logs: ReadonlyMap<NodeId, LogView>): void {
    const nodes = [...logs.keys()].sort();
    for (let i = 0; i < nodes.length; i += 1) {
      for (let j = i + 1; j < nodes.length; j += 1) {
        const a = nodes[i] as NodeId;
        const b = nodes[j] as NodeId;
        const mismatch = findLogMismatch(logs.get(a) as LogView, logs.get(b) as LogView);
        if (mismatch !== undefined) {
          this.fail(
            'log-matching',
            `group ${group}: ${a} and ${b} agree at index ${mismatch.agreeAt} (term ${mismatch.agreeTerm}) ` +
              `but differ at index ${mismatch.index} (terms ${mismatch.termA} vs ${mismatch.termB})`,
          );
        }
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Convergence, for the liveness phase.

  /**
   * What still keeps the cluster from having converged; empty once every group has one leader all
   * members follow and every replica holds the whole applied sequence.
   */
  convergenceGaps(
    groups: readonly GroupId[],
    statusesOf: (group: GroupId) => readonly GroupStatus[],
    recordsOf: (group: GroupId) => ReadonlyMap<NodeId, readonly AppliedRecord[]>,
  ): string[] {
    const gaps: string[] = [];
    for (const group of groups) {
      const statuses = statusesOf(group);
      const leaders = statuses.filter((status) => status.role === 'leader').map((status) => status.id);
      if (leaders.length !== 1) gaps.push(`group ${group} has leaders [${leaders.join(', ')}]`);
      const leader = leaders[0];
      const strays = statuses.filter((status) => status.leader !== leader).map((status) => status.id);
      if (strays.length > 0)
        gaps.push(`group ${group}: ${strays.join(', ')} do not follow ${leader ?? 'anyone'}`);
      const sequence = this.canonicalOf(group);
      for (const [node, records] of recordsOf(group)) {
        if (records.length !== sequence.length) {
          gaps.push(`group ${group}: ${node} holds ${records.length} of ${sequence.length} applied records`);
        }
      }
    }
    return gaps;
  }

  /** Every acknowledged proposal is in the applied sequence of its group, once. */
  checkAcknowledgedApplied(): void {
    for (const ack of this.acks.values()) {
      const record = this.canonicalOf(ack.group)[ack.seq];
      if (record?.proposalId !== ack.proposalId) {
        this.fail(
          'acknowledged-lost',
          `proposal ${ack.proposalId} acknowledged at seq ${ack.seq} is not there`,
        );
      }
    }
  }
}

interface LogMismatch {
  readonly agreeAt: Index;
  readonly agreeTerm: Term;
  readonly index: Index;
  readonly termA: Term | undefined;
  readonly termB: Term | undefined;
}

const findLogMismatch = (a: LogView, b: LogView): LogMismatch | undefined => {
  const low = Math.max(a.firstIndex, b.firstIndex);
  let agreeAt = Math.min(a.lastIndex, b.lastIndex);
  while (agreeAt >= low && a.termAt(agreeAt) !== b.termAt(agreeAt)) agreeAt -= 1;
  if (agreeAt < low) return undefined;
  const agreeTerm = a.termAt(agreeAt) as Term;
  for (let index = agreeAt - 1; index >= low; index -= 1) {
    const termA = a.termAt(index);
    const termB = b.termAt(index);
    if (termA !== termB) return { agreeAt, agreeTerm, index, termA, termB };
  }
  return undefined;
};
