// One group on this node: its core, its slice of the store, and everything waiting on it between
// turns (queued input, proposals in the log, reads waiting for their index to apply). Input only
// enqueues here; the turn's phases drain it.

import type { BatchOp, GroupKv, KvStore, ProposeOutcome, ReadOutcome } from '../api.js';
import type {
  ConfChange,
  ConfState,
  GroupId,
  Index,
  LogPosition,
  Message,
  NodeId,
  RawNodeApi,
  Ready,
  SnapshotMeta,
  Term,
} from '../core/types.js';
import { StoreGroupKv } from '../storage/group-kv.js';
import type { GroupLogIndex } from '../storage/group-log.js';
import type { AppliedState } from '../storage/record-codec.js';
import type { Request } from './requests.js';

/** How many read waiters a group tracks before it first sweeps out the settled ones. */
const READ_SWEEP_MIN = 1024;

/** The part of a hard state that must be durable before anything that depends on it is sent. */
export interface TermAndVote {
  readonly term: Term;
  readonly vote: NodeId | null;
}

export const sameTermAndVote = (a: TermAndVote, b: TermAndVote): boolean =>
  a.term === b.term && a.vote === b.vote;

export type Proposal<Result> =
  | { readonly kind: 'normal'; readonly data: Uint8Array; readonly request: Request<ProposeOutcome<Result>> }
  | {
      readonly kind: 'conf';
      readonly change: ConfChange;
      readonly request: Request<ProposeOutcome<ConfState>>;
    };

export interface PendingProposal<Result> {
  readonly term: Term;
  readonly proposal: Proposal<Result>;
}

export interface ReadWaiter {
  readonly request: Request<ReadOutcome>;
  /** Known once the core emitted the ReadState. */
  index: Index;
}

export interface InboundSnapshot {
  readonly message: Message;
  readonly pairs: readonly (readonly [Uint8Array, Uint8Array])[];
  readonly resolve: (installed: boolean) => void;
  stepped: boolean;
}

/** A group's Ready of this turn, carried through the phases. */
export interface ReadyWork<Result> {
  readonly replica: GroupReplica<Result>;
  readonly ready: Ready;
  /**
   * Messages that may leave only once this Ready is durable: all of them, unless Outbox.sendEarly
   * sent some before the write.
   */
  afterPersist?: readonly Message[];
}

/** A Ready that installs a received snapshot. */
export interface InstallWork<Result> extends ReadyWork<Result> {
  readonly ready: Ready & { readonly snapshot: SnapshotMeta };
}

export const installsSnapshot = <Result>(item: ReadyWork<Result>): item is InstallWork<Result> =>
  item.ready.snapshot !== undefined;

export interface GroupInit {
  readonly core: RawNodeApi;
  readonly log: GroupLogIndex;
  readonly compaction: SnapshotMeta;
  readonly applied: AppliedState;
  readonly confHistory: { readonly index: Index; readonly conf: ConfState }[];
  /** The term and vote of the hard state in the store. */
  readonly durable: TermAndVote;
}

export class GroupReplica<Result> {
  readonly core: RawNodeApi;
  readonly log: GroupLogIndex;
  readonly kv: GroupKv;
  compaction: SnapshotMeta;
  // Invariant: compaction.index <= persistedApplied <= applied.index
  applied: AppliedState;
  persistedApplied: Index;
  /** Conf changes applied after the compaction point, in index order. */
  confHistory: { readonly index: Index; readonly conf: ConfState }[];
  /** Avoids asking the core for progress on every turn once compaction is held back by a follower. */
  nextCompactionCheck: Index = 0;
  /** Data bytes of the entries in (compaction.index, persistedApplied]: what compaction could free. */
  logBytes: number;
  leader: NodeId | null = null;
  isLeader = false;
  /**
   * Term and vote of the last hard state written. A leader of that term may send before it persists;
   * a hard state that differs only in commit is not written at all (see WriteBatch.persist).
   */
  durable: TermAndVote;
  /** Term and vote of the last hard state handed to a write; ahead of `durable` while it is in flight. */
  written: TermAndVote;

  readonly inbox: Message[] = [];
  readonly proposals: Proposal<Result>[] = [];
  readonly reads: ReadWaiter[] = [];
  readonly transfers: NodeId[] = [];
  /** A vote fence to apply before anything else is stepped (RaftHost.fenceVotes). */
  voteFence: Term | undefined = undefined;
  /** Votes to hold (true) or release (false) before anything else is stepped (RaftHost.holdVotes). */
  holdVotes: boolean | undefined = undefined;
  /** A log fence to apply before anything else is stepped (RaftHost.fenceLog). */
  logFence: LogPosition | undefined = undefined;
  readonly snapshotReports: { readonly peer: NodeId; readonly ok: boolean }[] = [];
  readonly pending = new Map<Index, PendingProposal<Result>>();
  readonly readsByContext = new Map<number, ReadWaiter>();
  readSweepAt = READ_SWEEP_MIN;
  /** Reads whose index is known, waiting for applied to reach it (in arrival order). */
  readonly readsWaitingApply: ReadWaiter[] = [];
  inboundSnapshot: InboundSnapshot | undefined;
  readonly snapshotsSending = new Set<NodeId>();
  /** State-machine writes (and the applied record) since the last store write. */
  readonly unflushedOps: BatchOp[] = [];
  appliedUnflushed = false;

  constructor(
    readonly group: GroupId,
    store: KvStore,
    init: GroupInit,
  ) {
    this.core = init.core;
    this.log = init.log;
    this.kv = new StoreGroupKv(store, group);
    this.compaction = init.compaction;
    this.applied = init.applied;
    this.persistedApplied = init.applied.index;
    this.confHistory = init.confHistory;
    this.durable = init.durable;
    this.written = init.durable;
    this.logBytes = init.core.logBytesBetween(init.compaction.index, init.applied.index);
  }

  confAt(index: Index): ConfState {
    let conf = this.compaction.conf;
    for (const change of this.confHistory) {
      if (change.index > index) break;
      conf = change.conf;
    }
    return conf;
  }

  /** `self` is the group's only member (no other voter, no learner). */
  isLoneMember(self: NodeId): boolean {
    const conf = this.applied.conf;
    return conf.learners.length === 0 && conf.voters.length === 1 && conf.voters[0] === self;
  }

  /** Remembers a read the core took under `context`, until its ReadState names the index. */
  trackRead(context: number, read: ReadWaiter): void {
    this.readsByContext.set(context, read);
    // A core drops reads on a leader change; their waiters time out, and the map forgets them here.
    if (this.readsByContext.size > this.readSweepAt) {
      for (const [key, waiter] of this.readsByContext) {
        if (waiter.request.done) this.readsByContext.delete(key);
      }
      this.readSweepAt = Math.max(READ_SWEEP_MIN, 2 * this.readsByContext.size);
    }
  }

  /** Answers the reads whose index has applied. */
  resolveReads(): void {
    const waiting = this.readsWaitingApply;
    if (waiting.length === 0) return;
    let kept = 0;
    for (const read of waiting) {
      if (read.index <= this.applied.index) read.request.finish({ ok: true, index: read.index });
      else if (!read.request.done) waiting[kept++] = read;
    }
    waiting.length = kept;
  }
}
