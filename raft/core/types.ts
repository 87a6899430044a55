// The vocabulary of one Raft group, shared by the pure core, the host, the storage and the transport.
// Everything here is plain data so it can be encoded with msgpackr and compared in tests.

/** A node's stable identity (FASTPACA_NODE_NAME or a persisted UUID). */
export type NodeId = string;
/** Raft group number, 0 .. groupCount-1 (the service uses 256). */
export type GroupId = number;
export type Term = number;
export type Index = number;

export const EntryKind = {
  /** Application data; an empty `data` is the leader's no-op of a new term. */
  Normal: 0,
  /** A membership change: `data` is `encodeConfChange(...)`. */
  Conf: 1,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export interface Entry {
  readonly term: Term;
  readonly index: Index;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** What must be durable before any message of the same Ready is sent. */
/** A log position: an entry's index and term. */
export interface LogPosition {
  readonly index: Index;
  readonly term: Term;
}

/** `a` is later than `b` in the order of §5.4.1: a later term, or the same term and a higher index. */
export const isLaterPosition = (a: LogPosition, b: LogPosition): boolean =>
  a.term > b.term || (a.term === b.term && a.index > b.index);

export interface HardState {
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly commit: Index;
}

/** Membership of a group. Learners receive the log but neither vote nor count for quorum. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** Single-server membership changes (Raft thesis §4.1, with etcd's learners). */
export type ConfChange =
  | { readonly type: 'add_learner'; readonly node: NodeId }
  | { readonly type: 'promote'; readonly node: NodeId }
  | { readonly type: 'remove'; readonly node: NodeId };

/**
 * The point a log was compacted to, or the point a snapshot restores: everything up to and
 * including `index` is folded into state-machine state; `conf` is the membership at `index`.
 */
export interface SnapshotMeta {
  readonly index: Index;
  readonly term: Term;
  readonly conf: ConfState;
}

export const MessageType = {
  App: 1,
  AppResp: 2,
  Vote: 3,
  VoteResp: 4,
  PreVote: 5,
  PreVoteResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  /** Install a snapshot. The core only sees its metadata; the host streams the data beside it. */
  Snap: 9,
  /** Leadership transfer: the target campaigns at once, ignoring its election timer and leases. */
  TimeoutNow: 10,
  /** A follower asks the leader for a read index (etcd's MsgReadIndex). */
  ReadIndex: 11,
  ReadIndexResp: 12,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/**
 * One Raft message. Optional fields are present only for the types that use them:
 * - App: logTerm/index (of the entry before `entries`), entries, commit
 * - AppResp: index (last matching index on success), reject, rejectHint (follower's last index)
 * - Vote/PreVote: logTerm/index (candidate's last entry); VoteResp/PreVoteResp: reject
 * - Heartbeat: commit, context; HeartbeatResp: context
 * - Snap: snapshot
 * - ReadIndex/ReadIndexResp: context (the requester's read id), index (resp: the read index)
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  readonly logTerm?: Term;
  readonly index?: Index;
  readonly entries?: readonly Entry[];
  readonly commit?: Index;
  readonly reject?: boolean;
  readonly rejectHint?: Index;
  readonly snapshot?: SnapshotMeta;
  readonly context?: number;
}

export type Role = 'follower' | 'pre_candidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: NodeId | null;
  readonly role: Role;
}

/** A linearizable read point: once `applied >= index`, the read identified by `context` may be served. */
export interface ReadState {
  readonly index: Index;
  readonly context: number;
}

/**
 * Work for the host, in etcd's order: persist `snapshot`, `entries` and `hardState` (fsync when
 * `mustSync`); then send `messages`; then apply `committedEntries`; then call `advance(ready)`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  /** Entries to append. If the first index is <= the stored last index, the stored suffix from there is replaced. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to install before anything else in this Ready. */
  readonly snapshot?: SnapshotMeta;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

export type ProposeResult =
  | { readonly ok: true; readonly index: Index; readonly term: Term }
  | { readonly ok: false; readonly code: 'NOT_LEADER'; readonly leader: NodeId | null }
  | { readonly ok: false; readonly code: 'TRANSFERRING' }
  /** A membership change is already pending, or this leader has not yet committed an entry of its term. */
  | { readonly ok: false; readonly code: 'CONF_CHANGE_PENDING' }
  /** The in-memory uncommitted tail is over `uncommittedBytesMax`. */
  | { readonly ok: false; readonly code: 'OVERLOADED' };

export interface ProgressStatus {
  readonly match: Index;
  readonly next: Index;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: Term;
  readonly vote: NodeId | null;
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly commit: Index;
  /** The term of the entry at `commit` (0 before any). */
  readonly commitTerm: Term;
  readonly applied: Index;
  readonly firstIndex: Index;
  readonly lastIndex: Index;
  readonly conf: ConfState;
  /** Only on the leader. */
  readonly progress?: Readonly<Record<NodeId, ProgressStatus>>;
  readonly leadTransferee: NodeId | null;
}

export interface RaftConfig {
  readonly id: NodeId;
  /** Ticks without a leader's word before a follower campaigns; randomized in [electionTicks, 2*electionTicks). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Returns a float in [0, 1). Injected so the core stays deterministic under simulation. */
  readonly random: () => number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Flow control: at most this many App messages in flight to one follower ... */
  readonly inflightMsgsMax: number;
  /** ... and at most this many entry bytes in flight to one follower (0 = unbounded). */
  readonly inflightBytesMax: number;
  /** Upper bound on entry bytes in one App message (at least one entry is always sent). */
  readonly msgBytesMax: number;
  /** Proposals are refused with OVERLOADED while the uncommitted tail exceeds this (0 = unbounded). */
  readonly uncommittedBytesMax: number;
}

/** What the host recovered from storage for one group, handed to the core at construction. */
export interface RaftInitialState {
  readonly hardState: HardState;
  /** The compaction point (index 0, term 0 and the bootstrap membership for a fresh group). */
  readonly snapshot: SnapshotMeta;
  /** Entries after `snapshot.index`, contiguous. */
  readonly entries: readonly Entry[];
  /** Highest index already applied to the state machine (>= snapshot.index). */
  readonly applied: Index;
  /** Membership as of `applied` (conf entries take effect when applied). */
  readonly conf: ConfState;
}

/**
 * One group's consensus, driven by the host (etcd's RawNode shape). Synchronous and deterministic:
 * the same construction arguments and the same calls give the same Readys.
 * Implemented by `RawNode` in raw-node.ts.
 */
export interface RawNodeApi {
  /** Advance logical time by one tick (election and heartbeat timers, check-quorum). */
  tick(): void;
  /** Feed a message received from a peer. Messages for other terms/roles are handled per the paper. */
  step(message: Message): void;
  /** Append `data` as a new entry if this node leads. The entry is committed once `index` is applied with `term`. */
  propose(data: Uint8Array): ProposeResult;
  /** Propose a membership change (one at a time; refused until the leader has committed an entry of its term). */
  proposeConfChange(change: ConfChange): ProposeResult;
  /** Start a linearizable read; a ReadState with the same `context` appears in a later Ready. */
  readIndex(context: number): { readonly ok: true } | { readonly ok: false; readonly leader: NodeId | null };
  /** Ask the leader to hand leadership to `to` (a voter); a no-op on followers without a known leader. */
  transferLeader(to: NodeId): void;
  /** Start an election now (used to bootstrap single-voter groups quickly and by tests). */
  campaign(): void;
  /** Grant no vote in any term up to `term` (a start-up fence against forgotten votes). */
  fenceVotes(term: Term): void;
  /** Grant no vote to a candidate whose log lacks the committed entry (index, term) (a start-up fence). */
  fenceLog(index: Index, term: Term): void;
  /** Grant no vote and start no campaign while `held` (a start before any peer could be asked). */
  holdVotes(held: boolean): void;
  /** The host applied a conf entry: update membership. Returns the new membership. */
  applyConfChange(change: ConfChange): ConfState;
  /** The host could not reach `peer`: move its progress back to probing. */
  reportUnreachable(peer: NodeId): void;
  /** The host finished (or failed) streaming a snapshot to `peer`. */
  reportSnapshot(peer: NodeId, ok: boolean): void;
  /**
   * The host compacted its stored log up to `index` (<= applied): the core drops those entries from
   * memory and will send a snapshot to followers that need them.
   */
  compact(index: Index, term: Term, conf: ConfState): void;
  hasReady(): boolean;
  ready(): Ready;
  /** The host persisted, sent and applied everything in `ready`. */
  advance(ready: Ready): void;
  /**
   * Pipelined persistence, the first half of advance(): the host applied `ready`'s committed entries
   * and started (not finished) writing its entries and hard state, so the next ready() may be taken
   * now and holds only what came after. Not for a Ready with a snapshot (use advance).
   */
  accept(ready: Ready): void;
  /** The second half: the write that carried an accepted `ready` completed (its entries are durable). */
  persisted(ready: Ready): void;
  status(): RaftStatus;
  /** The term of the entry at `index`, or undefined if it is compacted away or beyond the log. */
  termAt(index: Index): Term | undefined;
  /** Data bytes of the retained log entries in (low, high]. */
  logBytesBetween(low: Index, high: Index): number;
  /** The lowest index whose following entries up to `high` hold at most `bytes` data bytes (compaction). */
  indexKeepingBytes(high: Index, bytes: number): Index;
}

export const encodeConfChange = (change: ConfChange): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(change));

export const decodeConfChange = (data: Uint8Array): ConfChange => {
  const parsed = JSON.parse(new TextDecoder().decode(data)) as ConfChange;
  return parsed;
};
