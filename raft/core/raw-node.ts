// One Raft group as a pure, synchronous state machine in etcd-io/raft's RawNode shape: ticks, messages
// and proposals go in; a Ready (what to persist, send and apply) comes out; the host acknowledges it with
// advance(). No clock, timers, randomness (config.random is injected) or I/O.
//
// Roles are swapped step/tick functions (stepLeader, stepCandidate, stepFollower; tickElection,
// tickHeartbeat). Term handling common to all roles lives in step(), as in etcd's raft.Step.

import { applyConfChange, copyConf, isMember, isVoter } from './conf.js';
import { invariant } from './invariant.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly } from './read-only.js';
import type { PendingRead } from './read-only.js';
import { EntryKind, MessageType, encodeConfChange, isLaterPosition } from './types.js';
import type { LogPosition } from './types.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Index,
  Message,
  NodeId,
  ProgressStatus,
  ProposeResult,
  RaftConfig,
  RaftInitialState,
  RaftStatus,
  RawNodeApi,
  ReadState,
  Ready,
  Role,
  SoftState,
  Term,
} from './types.js';

/**
 * Carried in `context` of Vote messages of a campaign started by TimeoutNow: voters grant it even
 * while they believe in a live leader (the leader itself asked for the transfer).
 */
export const campaignTransferContext = 1;

/** The vote a fenced replica holds (fenceVotes): no node id looks like it, so it matches no candidate. */
export const VOTE_FENCED = '!fenced';

/** Bounds on one Ready's committedEntries, so one apply batch never holds an unbounded backlog. */
export const readyCommittedBytesMax = 4 * 1024 * 1024;
export const readyCommittedEntriesMax = 10_000;

const noEntries: readonly Entry[] = [];
const emptyData = new Uint8Array(0);

type StepFn = (message: Message) => void;
type TickFn = () => void;

interface ReadRequest {
  readonly requester: NodeId;
  readonly context: number;
}

export class RawNode implements RawNodeApi {
  private readonly id: NodeId;
  private readonly config: RaftConfig;
  private readonly log: RaftLog;

  // Invariant: term never decreases; vote is reset only when term increases
  private term: Term;
  private vote: NodeId | null;
  private lead: NodeId | null = null;
  private role: Role = 'follower';
  private stepRole: StepFn;
  private tickRole: TickFn;
  /** Membership as of the last applied conf change (conf entries take effect when the host applies them). */
  private conf: ConfState;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  // Invariant: electionTicks <= randomizedElectionTicks < 2 * electionTicks
  private randomizedElectionTicks: number;

  // Leader-only state; emptied by reset() on every role change.
  // Invariant: on the leader, progress has exactly one entry per voter and learner
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private leadTransferee: NodeId | null = null;
  /** Votes held (holdVotes): no vote granted, no campaign, until released. */
  private votesHeld = false;
  /** The newest entry known committed when this replica started (fenceLog); none: { 0, 0 }. */
  private logFence: LogPosition = { index: 0, term: 0 };
  /** A conf change may be proposed only once applied >= pendingConfIndex (one change at a time). */
  private pendingConfIndex: Index = 0;
  /** Data bytes of this term's entries above commit (etcd's uncommittedSize). */
  private uncommittedBytes = 0;
  private readonly readOnly = new ReadOnly();
  private readSeq = 0;
  /** Reads that arrived before this leader committed an entry of its term (its commit may be stale). */
  private readsAwaitingCommit: ReadRequest[] = [];

  // Sends are coalesced until the host collects a Ready: many proposals or acks in one turn become one
  // App (or one heartbeat round) per follower instead of one per event.
  //
  // A new commit index alone sends nothing (etcd and raft-rs broadcast an empty App for it). Followers
  // learn it as the thesis has it, from the next App or heartbeat: a busy group's next App follows
  // within a round trip, an idle group's heartbeat within heartbeatTicks, and a ReadIndex round's
  // heartbeat carries it at once. Clients wait only for the leader's commit, so the broadcast cost a
  // message and a reply per follower, and a turn on each follower, for every write and bought nothing.
  private appendPending = false;
  private readHeartbeatPending = false;

  private messages: Message[] = [];
  private readStates: ReadState[] = [];
  private emittedSoftState: SoftState;
  private emittedHardState: HardState;
  // Invariant: at most one Ready is handed out between advance() calls
  private readyOutstanding = false;

  constructor(config: RaftConfig, initial: RaftInitialState) {
    validateConfig(config);
    this.id = config.id;
    this.config = config;
    const { hardState, snapshot } = initial;
    this.log = new RaftLog(snapshot, initial.entries, hardState.commit, initial.applied);
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.conf = copyConf(initial.conf);
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.randomizedElectionTicks = this.randomElectionTicks();
    this.emittedSoftState = { leader: null, role: 'follower' };
    this.emittedHardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  // ---------------------------------------------------------------------------------------------
  // Host API

  tick(): void {
    this.tickRole();
  }

  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    if (message.term > this.term) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    if (message.type === MessageType.Vote || message.type === MessageType.PreVote) {
      this.handleVoteRequest(message);
      return;
    }
    this.stepRole(message);
  }

  propose(data: Uint8Array): ProposeResult {
    const refusal = this.proposalRefusal();
    if (refusal !== undefined) return refusal;
    const bytesMax = this.config.uncommittedBytesMax;
    // An empty tail always accepts one entry, however large, so a big proposal is never stuck forever.
    if (bytesMax > 0 && this.uncommittedBytes > 0 && this.uncommittedBytes + data.byteLength > bytesMax) {
      return { ok: false, code: 'OVERLOADED' };
    }
    const entry = this.appendEntry(EntryKind.Normal, data);
    return { ok: true, index: entry.index, term: entry.term };
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    const refusal = this.proposalRefusal();
    if (refusal !== undefined) return refusal;
    // Thesis §4.1 (and its 2015 erratum): one change at a time, and only once this leader has committed
    // an entry of its own term, so two overlapping changes can never each gather a different majority.
    if (this.pendingConfIndex > this.log.applied || !this.committedInCurrentTerm()) {
      return { ok: false, code: 'CONF_CHANGE_PENDING' };
    }
    const entry = this.appendEntry(EntryKind.Conf, encodeConfChange(change));
    this.pendingConfIndex = entry.index;
    return { ok: true, index: entry.index, term: entry.term };
  }

  readIndex(context: number): { readonly ok: true } | { readonly ok: false; readonly leader: NodeId | null } {
    if (this.role === 'leader') {
      this.handleReadRequest({ requester: this.id, context });
      return { ok: true };
    }
    if (this.lead === null) return { ok: false, leader: null };
    this.send({ type: MessageType.ReadIndex, from: this.id, to: this.lead, term: this.term, context });
    return { ok: true };
  }

  transferLeader(to: NodeId): void {
    if (this.role !== 'leader' || to === this.id) return;
    const pr = this.progress.get(to);
    if (pr === undefined || !isVoter(this.conf, to)) return;
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === to) return;
      this.leadTransferee = null;
    }
    // The transfer must finish within one election timeout; tickHeartbeat aborts it otherwise.
    this.electionElapsed = 0;
    this.leadTransferee = to;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
  }

  campaign(): void {
    this.hup(false);
  }

  /**
   * A start-up fence against forgotten votes. A data directory restored from a copy (a volume
   * snapshot) may lack a vote this replica cast after the copy was taken; granting another in that
   * term could elect two leaders. The host learns from its peers the highest term any of them holds
   * and fences up to it: this replica moves to that term and counts its vote as cast (to nobody), so
   * it votes again only in a later term, where its forgotten vote cannot have been. A vote it still
   * holds for the fence's own term stays (it may be repeated to the same candidate, as ever).
   */
  fenceVotes(term: Term): void {
    if (term > this.term) {
      this.becomeFollower(term, null);
      this.vote = VOTE_FENCED;
    } else if (term === this.term && this.vote === null) {
      this.vote = VOTE_FENCED;
    }
  }

  /**
   * A start-up fence against forgotten entries. A data directory restored from a copy may lack
   * entries this replica acknowledged after the copy was taken, entries that were committed with its
   * acknowledgement counted. Voting for a candidate that lacks them (as the copy does) could elect a
   * leader without a committed entry, which then overwrites it everywhere. The host learns from its
   * peers the newest entry they know committed, and this replica grants no vote or pre-vote to a
   * candidate whose log is less up-to-date than that entry (in the order of §5.4.1). A candidate
   * holding the entry always passes, so a rightful leader is never refused: every leader holds every
   * committed entry. Not persisted: the replica holds the entry itself once it has caught up, after
   * which the ordinary up-to-date rule says the same; a restart before then asks the peers again.
   */
  fenceLog(index: Index, term: Term): void {
    if (isLaterPosition({ index, term }, this.logFence)) this.logFence = { index, term };
  }

  /**
   * Holds this replica's votes while `held`: it grants no vote or pre-vote and starts no campaign
   * (not on its election timeout, not on a leader's TimeoutNow). The host holds them while it could
   * not yet ask any peer for the fences above (a start with no peer answering): a directory restored
   * from a copy may have forgotten votes and entries, and until the fences are known it must not
   * vote, nor vote for itself. A group whose only voter is this replica is never held (no other
   * vote can conflict with its own). Volatile, like the fences: a restart decides again.
   */
  holdVotes(held: boolean): void {
    this.votesHeld = held;
  }

  applyConfChange(change: ConfChange): ConfState {
    this.conf = applyConfChange(this.conf, change);
    if (this.role === 'leader') this.leaderSwitchedConf();
    return copyConf(this.conf);
  }

  reportUnreachable(peer: NodeId): void {
    const pr = this.role === 'leader' ? this.progress.get(peer) : undefined;
    // An optimistic pipeline to an unreachable peer has most likely lost messages: probe again.
    if (pr?.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    const pr = this.role === 'leader' ? this.progress.get(peer) : undefined;
    if (pr?.state !== 'snapshot') return;
    // On failure forget the snapshot first, so probing restarts from match, not from its index.
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Success: wait for the follower's AppResp. Failure: wait a heartbeat before retrying.
    pr.paused = true;
  }

  compact(index: Index, term: Term, conf: ConfState): void {
    if (index <= this.log.snapshotIndex) return;
    this.log.compact(index, term, copyConf(conf));
  }

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    this.flushPendingSends();
    const log = this.log;
    return (
      this.messages.length > 0 ||
      this.readStates.length > 0 ||
      log.hasUnstable() ||
      log.pendingSnapshot !== undefined ||
      log.hasNextCommitted() ||
      this.softStateChanged() ||
      this.hardStateChanged()
    );
  }

  ready(): Ready {
    invariant(!this.readyOutstanding, 'ready() called again before advance()');
    this.flushPendingSends();
    const log = this.log;
    const entries = log.unstableEntries();
    const snapshot = log.pendingSnapshot;
    const hardState = this.hardStateChanged() ? this.currentHardState() : undefined;
    const softState = this.softStateChanged() ? this.currentSoftState() : undefined;
    const mustSync =
      entries.length > 0 ||
      snapshot !== undefined ||
      this.term !== this.emittedHardState.term ||
      this.vote !== this.emittedHardState.vote;
    const ready: Ready = {
      ...(softState === undefined ? {} : { softState }),
      ...(hardState === undefined ? {} : { hardState }),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries,
      committedEntries: log.nextCommitted(readyCommittedBytesMax, readyCommittedEntriesMax),
      messages: this.messages,
      readStates: this.readStates,
      mustSync,
    };
    if (softState !== undefined) this.emittedSoftState = softState;
    if (hardState !== undefined) this.emittedHardState = hardState;
    this.messages = [];
    this.readStates = [];
    this.readyOutstanding = true;
    return ready;
  }

  accept(ready: Ready): void {
    invariant(this.readyOutstanding, 'accept() without an outstanding ready()');
    invariant(ready.snapshot === undefined, 'a Ready with a snapshot is advanced, not accepted');
    this.readyOutstanding = false;
    const log = this.log;
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) log.acceptInProgress(lastEntry.index);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
  }

  persisted(ready: Ready): void {
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry === undefined) return;
    this.log.stableTo(lastEntry.index, lastEntry.term);
    if (this.role === 'leader') this.leaderPersisted();
  }

  advance(ready: Ready): void {
    invariant(this.readyOutstanding, 'advance() without an outstanding ready()');
    this.readyOutstanding = false;
    const log = this.log;
    if (ready.snapshot !== undefined) log.snapshotPersisted(ready.snapshot);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
    if (this.role === 'leader') this.leaderPersisted();
  }

  status(): RaftStatus {
    const base = {
      id: this.id,
      term: this.term,
      vote: this.vote,
      role: this.role,
      leader: this.lead,
      commit: this.log.committed,
      commitTerm: this.log.termAt(this.log.committed) ?? 0,
      applied: this.log.applied,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: copyConf(this.conf),
      leadTransferee: this.leadTransferee,
    };
    if (this.role !== 'leader') return base;
    const progress: Record<NodeId, ProgressStatus> = {};
    for (const [id, pr] of this.progress) progress[id] = pr.status();
    return { ...base, progress };
  }

  termAt(index: Index): Term | undefined {
    return this.log.termAt(index);
  }

  logBytesBetween(low: Index, high: Index): number {
    return this.log.dataBytesBetween(low, high);
  }

  indexKeepingBytes(high: Index, bytes: number): Index {
    return this.log.indexKeepingBytes(high, bytes);
  }

  // ---------------------------------------------------------------------------------------------
  // Terms and votes (common to every role)

  /** A message from a higher term. Returns false when it must be dropped. */
  private stepHigherTerm(m: Message): boolean {
    const isVoteRequest = m.type === MessageType.Vote || m.type === MessageType.PreVote;
    if (isVoteRequest && this.inLeaderLease() && m.context !== campaignTransferContext) {
      // We heard from a live leader within the election timeout: a node that cannot hear it (it
      // returned from a partition, or was removed) must not depose it by bumping terms.
      return false;
    }
    // A pre-vote is a question about a future term, not a claim to it: the term stays.
    if (m.type === MessageType.PreVote) return true;
    if (m.type === MessageType.PreVoteResp && m.reject !== true) return true;
    const fromLeader =
      m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
    this.becomeFollower(m.term, fromLeader ? m.from : null);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    const { checkQuorum, preVote } = this.config;
    if ((checkQuorum || preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
      // A stale leader (or this node's term grew while partitioned and, with check-quorum or pre-vote,
      // our votes no longer bump other terms): tell it our term so the cluster converges on one.
      this.send({ type: MessageType.AppResp, from: this.id, to: m.from, term: this.term });
    } else if (m.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResp, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private inLeaderLease(): boolean {
    return this.config.checkQuorum && this.lead !== null && this.electionElapsed < this.config.electionTicks;
  }

  /** §5.2, §5.4.1: grant at most one vote per term, and only to a candidate at least as up-to-date. */
  private handleVoteRequest(m: Message): void {
    const isPreVote = m.type === MessageType.PreVote;
    const canVote =
      !this.holdsVotes() &&
      (this.vote === m.from ||
        (this.vote === null && this.lead === null) ||
        (isPreVote && m.term > this.term));
    const respType = isPreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (
      canVote &&
      this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0) &&
      this.holdsLogFence(m.index ?? 0, m.logTerm ?? 0) &&
      !(isPreVote && this.yieldsNoPreVoteTo(m))
    ) {
      // The answer carries the candidate's term: for a pre-vote that is our future term, which the
      // pre-candidate recognises as its own round.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (!isPreVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  /** A candidate whose last entry is (lastIndex, lastTerm) holds the entry of the log fence. */
  private holdsLogFence(lastIndex: Index, lastTerm: Term): boolean {
    return !isLaterPosition(this.logFence, { index: lastIndex, term: lastTerm });
  }

  /**
   * Two pre-candidates polling each other at once (the two survivors of a three-node group whose
   * timers fired within a round trip) would both win their pre-votes, then each vote for itself in the
   * real election: a split vote that costs the group another election timeout. etcd grants both; here
   * a pre-candidate grants only a rival whose log is more up-to-date, or as up-to-date with a lower id,
   * so exactly one of them proceeds and the other votes for it. Pre-votes never decide a term, so this
   * changes no safety property; a follower still grants as before.
   */
  private yieldsNoPreVoteTo(m: Message): boolean {
    if (this.role !== 'pre_candidate') return false;
    const index = m.index ?? 0;
    const logTerm = m.logTerm ?? 0;
    const sameLog = logTerm === this.log.lastTerm() && index === this.log.lastIndex();
    return sameLog && m.from > this.id;
  }

  // ---------------------------------------------------------------------------------------------
  // Role transitions

  private reset(term: Term): void {
    if (term !== this.term) {
      invariant(term > this.term, 'term must never decrease');
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks = this.randomElectionTicks();
    this.leadTransferee = null;
    this.votes.clear();
    this.progress.clear();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.readsAwaitingCommit = [];
    this.appendPending = false;
    this.readHeartbeatPending = false;
  }

  private becomeFollower(term: Term, lead: NodeId | null): void {
    this.reset(term);
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Pre-vote changes neither term nor vote: a node that cannot win disrupts nobody (thesis §9.6).
    this.votes.clear();
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.lead = null;
    this.role = 'pre_candidate';
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    invariant(this.role === 'candidate', 'only a candidate can become leader');
    this.reset(this.term);
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.lead = this.id;
    this.role = 'leader';
    const next = this.log.lastIndex() + 1;
    for (const id of this.conf.voters) this.progress.set(id, this.newProgress(next));
    for (const id of this.conf.learners) this.progress.set(id, this.newProgress(next));
    const self = this.selfProgress();
    self.match = this.log.stableIndex;
    self.recentActive = true;
    // Any entry after the current tail may hide an unapplied conf change; wait until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // §5.4.2 / §8: an entry of the new term lets earlier entries commit and proves commit for reads.
    this.appendEntry(EntryKind.Normal, emptyData);
  }

  private newProgress(next: Index): Progress {
    return new Progress(next, this.config.inflightMsgsMax, this.config.inflightBytesMax);
  }

  private selfProgress(): Progress {
    const self = this.progress.get(this.id);
    invariant(self !== undefined, 'leader has no progress for itself');
    return self;
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  private readonly tickElection: TickFn = () => {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTicks && this.promotable()) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  };

  private readonly tickHeartbeat: TickFn = () => {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.quorumActive()) {
        // §6.2 / thesis §6.2: a leader that has not heard from a majority for an election timeout has
        // likely been partitioned away; it steps down so clients look for the real leader.
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastPendingSeq());
    }
  };

  /** Whether a majority of voters was heard from since the last check; resets the marks. */
  private quorumActive(): boolean {
    const active = hasQuorum(
      this.conf.voters,
      (id) => id === this.id || this.progress.get(id)?.recentActive === true,
    );
    for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
    return active;
  }

  private randomElectionTicks(): number {
    const { electionTicks } = this.config;
    const jitter = Math.min(electionTicks - 1, Math.floor(this.config.random() * electionTicks));
    return electionTicks + Math.max(0, jitter);
  }

  // ---------------------------------------------------------------------------------------------
  // Elections

  /** holdVotes is in force: held, and some other replica votes in this group. */
  private holdsVotes(): boolean {
    if (!this.votesHeld) return false;
    const voters = this.conf.voters;
    return !(voters.length === 1 && voters[0] === this.id);
  }

  /** A node may campaign only as a voter, with no received snapshot still being installed. */
  private promotable(): boolean {
    return isVoter(this.conf, this.id) && this.log.pendingSnapshot === undefined;
  }

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable() || this.holdsVotes()) return;
    // A committed but unapplied conf change means our view of the voters may be stale.
    if (this.log.hasUnappliedConf(EntryKind.Conf)) return;
    if (this.config.preVote && !transfer) this.campaignPreVote();
    else this.campaignElection(transfer);
  }

  private campaignPreVote(): void {
    this.becomePreCandidate();
    if (this.poll(this.id, true) === 'won') {
      this.campaignElection(false);
      return;
    }
    this.requestVotes(MessageType.PreVote, this.term + 1, false);
  }

  private campaignElection(transfer: boolean): void {
    this.becomeCandidate();
    if (this.poll(this.id, true) === 'won') {
      this.becomeLeader();
      return;
    }
    this.requestVotes(MessageType.Vote, this.term, transfer);
  }

  private requestVotes(type: MessageType, term: Term, transfer: boolean): void {
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      this.send({
        type,
        from: this.id,
        to,
        term,
        index,
        logTerm,
        ...(transfer ? { context: campaignTransferContext } : {}),
      });
    }
  }

  private poll(from: NodeId, granted: boolean): ReturnType<typeof voteResult> {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteResult(this.conf.voters, this.votes);
  }

  // ---------------------------------------------------------------------------------------------
  // Role step functions

  private readonly stepFollower: StepFn = (m) => {
    switch (m.type) {
      case MessageType.App:
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // The leader asked us to take over: campaign at once, skipping pre-vote and leases.
        this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index ?? 0, context: m.context ?? 0 });
        return;
      default:
        return;
    }
  };

  /** Shared by pre-candidates and candidates; each counts only answers to its own kind of request. */
  private readonly stepCandidate: StepFn = (m) => {
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        // §5.2: a leader of our term exists; a candidate returns to follower.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp:
        this.handleVoteResponse(m);
        return;
      default:
        return;
    }
  };

  private readonly stepLeader: StepFn = (m) => {
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m);
        return;
      case MessageType.ReadIndex:
        this.handleReadRequest({ requester: m.from, context: m.context ?? 0 });
        return;
      default:
        return;
    }
  };

  private heardFromLeader(leader: NodeId): void {
    this.electionElapsed = 0;
    this.lead = leader;
  }

  private handleVoteResponse(m: Message): void {
    const expected = this.role === 'pre_candidate' ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (m.type !== expected) return;
    const result = this.poll(m.from, m.reject !== true);
    if (result === 'won') {
      if (this.role === 'pre_candidate') this.campaignElection(false);
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term, null);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Follower side of replication

  private handleAppend(m: Message): void {
    const prevIndex = m.index ?? 0;
    const prevTerm = m.logTerm ?? 0;
    const log = this.log;
    if (prevIndex < log.committed) {
      // Everything up to commit is settled; tell the leader where we are.
      this.sendAppResp(m.from, log.committed);
      return;
    }
    const lastNewIndex = log.maybeAppend(prevIndex, prevTerm, m.commit ?? 0, m.entries ?? noEntries);
    if (lastNewIndex !== undefined) {
      // Sent only after this Ready's entries are persisted: the ack never runs ahead of the disk.
      this.sendAppResp(m.from, lastNewIndex);
      return;
    }
    // §5.3 consistency check failed. Hint the leader at the last index whose term could match.
    const hint = log.findConflictByTerm(Math.min(prevIndex, log.lastIndex()), prevTerm);
    this.send({
      type: MessageType.AppResp,
      from: this.id,
      to: m.from,
      term: this.term,
      index: prevIndex,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleHeartbeat(m: Message): void {
    // The leader sends min(our match, its commit), so this never commits entries we do not share.
    this.log.commitTo(Math.min(m.commit ?? 0, this.log.lastIndex()));
    this.send({
      type: MessageType.HeartbeatResp,
      from: this.id,
      to: m.from,
      term: this.term,
      ...(m.context === undefined ? {} : { context: m.context }),
    });
  }

  private handleSnapshot(m: Message): void {
    const meta = m.snapshot;
    if (meta === undefined) return;
    if (meta.index <= this.log.committed) {
      this.sendAppResp(m.from, this.log.committed);
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // Our log already holds the snapshot's last entry (etcd's restore fast-forward): keep the log
      // and only advance commit. Restoring would drop the entries after it, which we may already
      // have acknowledged; the leader never lowers a match, so it would neither resend them nor
      // stop counting them toward a quorum (a committed entry could be lost).
      this.log.commitTo(meta.index);
      this.sendAppResp(m.from, this.log.committed);
      return;
    }
    this.log.restore(meta);
    this.conf = copyConf(meta.conf);
    this.sendAppResp(m.from, meta.index);
  }

  private sendAppResp(to: NodeId, index: Index): void {
    this.send({ type: MessageType.AppResp, from: this.id, to, term: this.term, index });
  }

  // ---------------------------------------------------------------------------------------------
  // Leader side of replication

  private proposalRefusal(): ProposeResult | undefined {
    if (this.role !== 'leader') return { ok: false, code: 'NOT_LEADER', leader: this.lead };
    if (this.leadTransferee !== null) return { ok: false, code: 'TRANSFERRING' };
    return undefined;
  }

  private appendEntry(kind: EntryKind, data: Uint8Array): Entry {
    const entry: Entry = { term: this.term, index: this.log.lastIndex() + 1, kind, data };
    this.log.appendLeader(entry);
    this.uncommittedBytes += data.byteLength;
    this.appendPending = true;
    return entry;
  }

  /** The host persisted some of our log: our own copy now counts toward quorum up to stableIndex. */
  private leaderPersisted(): void {
    if (this.selfProgress().maybeUpdate(this.log.stableIndex)) this.maybeCommit();
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    const index = m.index ?? 0;
    if (m.reject === true) {
      this.handleAppendRejection(m, pr);
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(index) && !(pr.match === index && pr.state === 'probe')) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot') {
      // The follower installed a snapshot (or caught up another way): resume once we hold what follows.
      if (pr.match + 1 >= this.log.firstIndex()) {
        pr.becomeProbe();
        pr.becomeReplicate();
      }
    } else {
      pr.inflights.freeLE(index);
    }
    this.maybeCommit();
    if (wasPaused) this.maybeSendAppend(m.from, true);
    // The window may have opened for several messages at once.
    while (this.maybeSendAppend(m.from, false));
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleAppendRejection(m: Message, pr: Progress): void {
    let hint = m.rejectHint ?? 0;
    const hintTerm = m.logTerm ?? 0;
    // Skip our own entries of terms the follower cannot have: one round trip per term, not per entry.
    if (hintTerm > 0) hint = this.log.findConflictByTerm(hint, hintTerm).index;
    if (!pr.maybeDecrTo(m.index ?? 0, hint)) return;
    if (pr.state === 'replicate') pr.becomeProbe();
    this.maybeSendAppend(m.from, true);
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    // Lets at least one (possibly empty) App through, which resynchronises a window whose messages
    // were all lost.
    pr.paused = false;
    if (pr.match < this.log.lastIndex() || pr.state === 'probe') this.maybeSendAppend(m.from, true);
    if (m.context === undefined) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined || !hasQuorum(this.conf.voters, (id) => acks.has(id))) return;
    for (const read of this.readOnly.advance(m.context)) this.answerRead(read);
  }

  /** §5.3/§5.4.2: commit the highest index a majority of voters persisted, if it is of our term. */
  private maybeCommit(): void {
    const candidate = committedIndex(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
    const log = this.log;
    if (candidate <= log.committed || log.termAt(candidate) !== this.term) return;
    const previous = log.committed;
    const firstInTerm = log.termAt(previous) !== this.term;
    log.commitTo(candidate);
    const committedBytes = log.bytesOfTermBetween(previous, candidate, this.term);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - committedBytes);
    if (firstInTerm) this.releaseReadsAwaitingCommit();
  }

  /**
   * Sends the follower an App from its next index: entries when it has room (at most msgBytesMax, at
   * least one entry), an empty one only when `sendIfEmpty` (to carry commit or resynchronise), or a
   * snapshot when the entries it needs are compacted away. Returns whether anything was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || to === this.id || pr.isPaused()) return false;
    const log = this.log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.termAt(prevIndex);
    if (prevTerm === undefined) return this.maybeSendSnapshot(to, pr);
    // A full window sends only empty Apps (see handleHeartbeatResponse).
    const throttled = pr.state === 'replicate' && pr.inflights.full();
    const entries = throttled ? noEntries : log.slice(pr.next, this.config.msgBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: MessageType.App,
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: log.committed,
    });
    const last = entries[entries.length - 1];
    if (last !== undefined) pr.sentEntries(entries.length, last.index, entriesBytes(entries));
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    // A snapshot is expensive: only stream it to a follower we know is alive.
    if (!pr.recentActive) return false;
    const meta = this.log.snapshotMeta();
    pr.becomeSnapshot(meta.index);
    this.send({ type: MessageType.Snap, from: this.id, to, term: this.term, snapshot: meta });
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: MessageType.TimeoutNow, from: this.id, to, term: this.term });
  }

  private broadcastHeartbeat(readSeq: number | undefined): void {
    const committed = this.log.committed;
    for (const [to, pr] of this.progress) {
      if (to === this.id) continue;
      this.send({
        type: MessageType.Heartbeat,
        from: this.id,
        to,
        term: this.term,
        // Never past what the follower is known to share with us.
        commit: Math.min(pr.match, committed),
        ...(readSeq === undefined ? {} : { context: readSeq }),
      });
    }
  }

  /** Turns coalesced send requests into messages; called when the host asks for work. */
  private flushPendingSends(): void {
    if (this.role !== 'leader') return;
    if (this.appendPending) {
      this.appendPending = false;
      for (const to of this.progress.keys()) {
        if (to === this.id) continue;
        while (this.maybeSendAppend(to, false));
      }
    }
    if (this.readHeartbeatPending) {
      this.readHeartbeatPending = false;
      this.broadcastHeartbeat(this.readOnly.lastPendingSeq());
    }
  }

  private leaderSwitchedConf(): void {
    if (!isVoter(this.conf, this.id)) {
      // A leader removed from the voters must not keep leading a group it no longer belongs to.
      this.becomeFollower(this.term, null);
      return;
    }
    for (const id of this.progress.keys()) if (!isMember(this.conf, id)) this.progress.delete(id);
    // New members start probing at our last entry, so the first App carries something to check.
    const next = Math.max(1, this.log.lastIndex());
    for (const id of [...this.conf.voters, ...this.conf.learners]) {
      if (this.progress.has(id)) continue;
      const pr = this.newProgress(next);
      // Lets a snapshot go out at once if the new member needs one.
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    if (this.leadTransferee !== null && !isVoter(this.conf, this.leadTransferee)) this.leadTransferee = null;
    // The quorum changed: a removed voter may have been holding commit back.
    this.maybeCommit();
    this.appendPending = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Linearizable reads (ReadIndex, etcd's ReadOnlySafe)

  private handleReadRequest(request: ReadRequest): void {
    if (!this.committedInCurrentTerm()) {
      // Until an entry of our term commits, our commit index may lag the previous leader's.
      this.readsAwaitingCommit.push(request);
      return;
    }
    const index = this.log.committed;
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.answerRead({
        seq: 0,
        index,
        requester: request.requester,
        context: request.context,
        acks: new Set(),
      });
      return;
    }
    this.readSeq++;
    this.readOnly.add(
      { seq: this.readSeq, index, requester: request.requester, context: request.context },
      this.id,
    );
    this.readHeartbeatPending = true;
  }

  private releaseReadsAwaitingCommit(): void {
    const waiting = this.readsAwaitingCommit;
    if (waiting.length === 0) return;
    this.readsAwaitingCommit = [];
    for (const request of waiting) this.handleReadRequest(request);
  }

  private answerRead(read: PendingRead): void {
    if (read.requester === this.id) {
      this.readStates.push({ index: read.index, context: read.context });
      return;
    }
    this.send({
      type: MessageType.ReadIndexResp,
      from: this.id,
      to: read.requester,
      term: this.term,
      index: read.index,
      context: read.context,
    });
  }

  private committedInCurrentTerm(): boolean {
    return this.log.termAt(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------------------------------------
  // Ready bookkeeping

  private send(message: Message): void {
    this.messages.push(message);
  }

  private currentHardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private currentSoftState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  private hardStateChanged(): boolean {
    const emitted = this.emittedHardState;
    return emitted.term !== this.term || emitted.vote !== this.vote || emitted.commit !== this.log.committed;
  }

  private softStateChanged(): boolean {
    return this.emittedSoftState.leader !== this.lead || this.emittedSoftState.role !== this.role;
  }
}

function entriesBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.data.byteLength;
  return bytes;
}

function validateConfig(config: RaftConfig): void {
  invariant(config.id.length > 0, 'config.id must be non-empty');
  invariant(
    Number.isInteger(config.heartbeatTicks) && config.heartbeatTicks >= 1,
    'heartbeatTicks must be >= 1',
  );
  invariant(
    Number.isInteger(config.electionTicks) && config.electionTicks > config.heartbeatTicks,
    'electionTicks must be > heartbeatTicks',
  );
  invariant(
    Number.isInteger(config.inflightMsgsMax) && config.inflightMsgsMax >= 1,
    'inflightMsgsMax must be >= 1',
  );
  invariant(config.inflightBytesMax >= 0, 'inflightBytesMax must be >= 0');
  invariant(config.msgBytesMax > 0, 'msgBytesMax must be > 0');
  invariant(config.uncommittedBytesMax >= 0, 'uncommittedBytesMax must be >= 0');
}
