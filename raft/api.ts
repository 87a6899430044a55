// The seams of the raft/ library: what the host needs from storage and transport, what it asks of the
// application's state machine, and what it offers the application. The simulator implements the same
// KvStore and Transport over a simulated disk and network, so the real host code runs under test.

import type {
  ConfChange,
  ConfState,
  GroupId,
  Index,
  Message,
  NodeId,
  RaftStatus,
  SnapshotMeta,
  Term,
} from './core/types.js';

// ---------------------------------------------------------------------------------------------
// Storage: one ordered binary key-value store per process (LevelDB in production).

export type BatchOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

export interface KeyRange {
  readonly gte?: Uint8Array;
  readonly gt?: Uint8Array;
  readonly lt?: Uint8Array;
  readonly lte?: Uint8Array;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface KvStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /**
   * Apply `ops` atomically. With `sync` the promise resolves only after fsync. A rejected write is
   * fatal to the caller (the host exits the process; it never retries in place).
   */
  write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void>;
  /** Ordered scan of a consistent point-in-time view (taken when the call is made). */
  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// State machine: the application's deterministic apply, with its writes in the host's atomic batch.

/**
 * A view of the store restricted to one group's state-machine key space. Keys passed here are
 * suffixes; the host adds the group prefix. The whole space is what a snapshot of the group carries.
 */
export interface GroupKv {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]>;
}

/** Writes of one apply call. They become durable atomically with the group's applied index. */
export interface GroupWriteBatch {
  put(key: Uint8Array, value: Uint8Array): void;
  del(key: Uint8Array): void;
}

export interface AppliedEntry {
  readonly index: Index;
  readonly term: Term;
  readonly data: Uint8Array;
}

export interface StateMachine<Result = unknown> {
  /**
   * Apply committed entries of one group in order; one result per entry (handed to this node's
   * proposer, if any). Deterministic: same entries and same stored state give the same writes and
   * results on every replica. Never reads the clock. Reads may go through `kv`, but must also see
   * this group's earlier writes that are not yet durable (the state machine keeps them cached until
   * `persisted` is called for an index >= theirs).
   * Calls for one group never overlap; calls for different groups may.
   */
  apply(
    group: GroupId,
    entries: readonly AppliedEntry[],
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<readonly Result[]> | readonly Result[];
  /** Everything applied to `group` up to `appliedIndex` is now durable. */
  persisted?(group: GroupId, appliedIndex: Index): void;
  /** The group's key space was replaced by a snapshot at `meta.index`: drop every cache of it. */
  restored(group: GroupId, meta: SnapshotMeta): void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Transport: batches of messages between hosts, one long-lived stream per peer.

export interface GroupMessage {
  readonly group: GroupId;
  readonly message: Message;
}

/**
 * A chunk of a snapshot of one group: a run of (key suffix, value) pairs of its state-machine space
 * (the host's applied-state record included). `message` is the core's Snap message, its `snapshot`
 * metadata describing exactly these pairs; the receiver steps it into its core once all chunks arrived.
 */
export interface SnapshotChunk {
  readonly group: GroupId;
  readonly message: Message;
  /** 0-based; the receiver rejects out-of-order chunks. */
  readonly seq: number;
  readonly pairs: readonly (readonly [Uint8Array, Uint8Array])[];
  readonly last: boolean;
}

export interface TransportHandlers {
  /** A batch of messages from `from`. Must only enqueue. */
  onMessages(from: NodeId, batch: readonly GroupMessage[]): void;
  /**
   * A complete snapshot arrived (chunks reassembled in order). Resolves true once installed, false if
   * refused (stale, or a newer one is in progress). The boolean is sent back to the sender.
   */
  onSnapshot(
    from: NodeId,
    group: GroupId,
    message: Message,
    pairs: readonly (readonly [Uint8Array, Uint8Array])[],
  ): Promise<boolean>;
}

export interface Transport {
  start(handlers: TransportHandlers): Promise<void>;
  /** Peer addresses (gRPC host:port). Unknown peers' messages are dropped and counted. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /**
   * Queue one frame of messages for `to`. Never blocks or throws: if the peer is unreachable the
   * batch is dropped and counted (Raft retries), and `onUnreachable` is reported.
   */
  send(to: NodeId, batch: readonly GroupMessage[]): void;
  /** Stream a snapshot in chunks; resolves true once the receiver installed it. */
  sendSnapshot(to: NodeId, chunks: AsyncIterable<SnapshotChunk>): Promise<boolean>;
  /** Peers that failed since the last call (the host reports them to the groups' cores). */
  drainUnreachable(): readonly NodeId[];
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// What the host offers the application.

export type FailureCode = 'NOT_LEADER' | 'OVERLOADED' | 'TIMEOUT' | 'SHUTTING_DOWN' | 'NO_GROUP' | 'DROPPED';

export interface Failure {
  readonly ok: false;
  readonly code: FailureCode;
  /** For NOT_LEADER: the leader this node believes in, if any. */
  readonly leader?: NodeId | null;
  readonly message?: string;
}

export type ProposeOutcome<Result> =
  { readonly ok: true; readonly index: Index; readonly result: Result } | Failure;

export type ReadOutcome = { readonly ok: true; readonly index: Index } | Failure;

export interface GroupStatus extends RaftStatus {
  readonly group: GroupId;
}

export interface RaftHostLimits {
  /** Proposals queued but not yet handed to a core, across all groups. */
  readonly proposalQueueMax: number;
  /** Proposals handed to cores but not yet applied, across all groups. */
  readonly pendingProposalsMax: number;
  /** Inbound messages queued for the next turn, across all peers. */
  readonly inboundQueueMax: number;
  /** Per follower, per group: entry bytes in flight. */
  readonly inflightBytesMax: number;
  readonly inflightMsgsMax: number;
  readonly msgBytesMax: number;
  /** Per group: uncommitted bytes a leader accepts before refusing proposals. */
  readonly uncommittedBytesMax: number;
  /** Compact a group's log once this many applied entries sit before the applied index. */
  readonly logRetainEntries: number;
  /**
   * Compact a group's log once its retained entries hold this many data bytes, however few they are:
   * the log lives in memory, so large entries must not be kept by count alone; keep it at least
   * inflightBytesMax, or a follower streaming at full speed may keep needing snapshots. Default 4 MiB.
   */
  readonly logRetainBytes?: number;
  /**
   * Proposal bytes one turn hands to the cores, across all groups (at least one proposal always
   * goes); the rest wait for the next turn. Bounds a turn's apply, encode and write under a flood of
   * large appends, so its heartbeats keep their pace. Default 4 MiB.
   */
  readonly turnProposalBytesMax?: number;
}

export interface ConsensusHost<Result = unknown> {
  /** Resolves after the entry is committed and applied on this node, with the state machine's result. */
  propose(
    group: GroupId,
    data: Uint8Array,
    options?: { readonly timeoutMs?: number },
  ): Promise<ProposeOutcome<Result>>;
  /** Resolves once this node has applied everything committed before the call (ReadIndex). */
  readIndex(group: GroupId, options?: { readonly timeoutMs?: number }): Promise<ReadOutcome>;
  leaderOf(group: GroupId): NodeId | null;
  status(group: GroupId): GroupStatus | undefined;
  groups(): readonly GroupId[];
  changeMembership(
    group: GroupId,
    change: ConfChange,
    options?: { readonly timeoutMs?: number },
  ): Promise<ProposeOutcome<ConfState>>;
  transferLeader(group: GroupId, to: NodeId): void;
  /** A read-only view of one group's state-machine space, for serving reads after readIndex. */
  groupKv(group: GroupId): GroupKv;
}

// ---------------------------------------------------------------------------------------------
// Constructing a host. `RaftHost` (host/raft-host.ts) implements ConsensusHost plus the driving calls
// below; `startHostLoop` (driver.ts) drives it in real time, the simulator drives it by hand.

export interface RaftHostOptions<Result> {
  readonly nodeId: NodeId;
  readonly store: KvStore;
  readonly transport: Transport;
  readonly stateMachine: StateMachine<Result>;
  /** Seeded randomness for election timeouts (one stream per host; the host derives one per group). */
  readonly random: () => number;
  /** Milliseconds on the host's clock (Date.now in production, simulated time in the simulator). */
  readonly now: () => number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly limits: RaftHostLimits;
  /** Called when a store write fails or an invariant breaks. Production: log and exit(1). */
  readonly onFatal: (error: Error) => void;
  /**
   * Asked before each proposal: a reason refuses it (OVERLOADED) before it reaches the log, e.g. while
   * the store's disk is nearly full. Membership changes are never refused (they free space).
   */
  readonly refuseProposals?: () => string | undefined;
  /**
   * Asked as replicated entries and snapshots arrive: a reason drops them (the leader resends later,
   * as after any lost message), e.g. while this follower's disk is nearly full, so a follower stops
   * taking writes before its store fails instead of crashing. Heartbeats and votes still pass.
   */
  readonly refuseEntries?: () => string | undefined;
  /** Whether to create a replica for a group this node does not have when a message for it arrives. */
  readonly acceptUnknownGroup?: (group: GroupId, from: NodeId) => boolean;
  /** Timers for metrics: each is called as the work starts and returns the function that ends it. */
  readonly timers?: RaftHostTimers;
  /**
   * Pipelined persistence: a turn starts its store write and ends without waiting for it, so the next
   * turn steps, sends and applies while the disk syncs; what depends on the write (the core's stable
   * index, answers to the leader, votes) waits for it as before (write-pipeline.ts). Off: every turn
   * awaits its own write, so turn() returning means its write is durable.
   */
  readonly pipelineWrites?: boolean;
}

export interface RaftHostTimers {
  /** One loop turn. */
  readonly turn: () => () => void;
  /** One synced store write. */
  readonly syncedWrite: () => () => void;
}

export interface DrivableHost<Result = unknown> extends ConsensusHost<Result> {
  /** Create `group` with this membership unless it already exists (idempotent across restarts). */
  bootstrapGroup(group: GroupId, voters: readonly NodeId[]): Promise<void>;
  /** One tick on every group (election/heartbeat timers), and expiry of timed-out requests. */
  tick(): void;
  /** True when a turn would do something (queued input, or a group with a Ready). */
  hasWork(): boolean;
  /**
   * One loop turn: step queued messages and proposals, collect every group's Ready, persist them
   * in one synced batch, send messages grouped per peer, apply committed entries, resolve waiters,
   * advance. Turns never overlap (the caller awaits each). With pipelined writes a turn may end
   * before its write completes; a later turn finishes it (hasWork says when one should run).
   */
  turn(): Promise<void>;
  close(): Promise<void>;
}
