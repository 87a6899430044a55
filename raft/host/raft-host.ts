// The multi-group host: drives every Raft group of this process in one loop. Inbound messages,
// proposals and reads only enqueue; each turn steps them into the cores, persists every group's Ready in
// ONE store write (group commit), sends one frame per peer (a turn's answers ride with the next turn's
// frame when one follows at once), applies committed entries and resolves the waiters, then advances
// the cores. Time and randomness come from the options (never Date or Math.random here), so the
// simulator can drive the same code by hand.

import type {
  BatchOp,
  DrivableHost,
  Failure,
  GroupKv,
  GroupMessage,
  GroupStatus,
  KvStore,
  ProposeOutcome,
  RaftHostOptions,
  ReadOutcome,
  StateMachine,
  TransportHandlers,
} from '../api.js';
import { applyConfChange } from '../core/conf.js';
import { RawNode } from '../core/raw-node.js';
import {
  EntryKind,
  MessageType,
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type GroupId,
  type HardState,
  type Index,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type RawNodeApi,
  type Ready,
  type SnapshotMeta,
  type Term,
} from '../core/types.js';
import { PrefixedWriteBatch, StoreGroupKv } from '../storage/group-kv.js';
import { GroupLogIndex, recoverGroupLog } from '../storage/group-log.js';
import {
  KeyKind,
  appliedStateKey,
  groupSpaceKey,
  groupSpacePrefix,
  hardStateKey,
  keyGroup,
  kindRange,
  logBatchFirstIndex,
  logMetaKey,
  prefixRange,
} from '../storage/keys.js';
import {
  decodeAppliedState,
  decodeHardState,
  decodeSnapshotMeta,
  encodeAppliedState,
  encodeHardState,
  encodeSnapshotMeta,
  type AppliedState,
} from '../storage/record-codec.js';
import { snapshotChunks } from '../storage/snapshot-stream.js';

/**
 * Applied entries a lone-member group keeps in memory (and in its stored log) before compacting:
 * nobody will ask for them, so only a small batch, to keep compaction writes rare.
 */
const LONE_LOG_RETAIN_ENTRIES = 64;
/** Default of limits.logRetainBytes. */
const LOG_RETAIN_BYTES_DEFAULT = 4 * 1024 * 1024;

/** Requests without an explicit timeout expire after this long. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

const READ_SWEEP_MIN = 1024;

/** Read contexts: a per-incarnation random prefix above a 31-bit counter, all within 2^53. */
const READ_COUNTER_SPAN = 0x8000_0000;
const READ_PREFIX_SPAN = 0x40_0000;

/** The part of a hard state that must be durable before anything that depends on it is sent. */
interface TermAndVote {
  readonly term: Term;
  readonly vote: NodeId | null;
}

const sameTermAndVote = (a: TermAndVote, b: TermAndVote): boolean => a.term === b.term && a.vote === b.vote;

/** Marks an applied entry that produced no state-machine result (the leader's no-op). */
const NO_RESULT = Symbol('no result');

/** Counters for metrics and benchmarks; monotonic since the host opened. */
export interface RaftHostStats {
  readonly turns: number;
  readonly storeWrites: number;
  readonly syncedWrites: number;
  readonly entriesPersisted: number;
  readonly entriesApplied: number;
  readonly proposals: number;
  readonly messagesSent: number;
  readonly framesSent: number;
  readonly messagesReceived: number;
  readonly messagesDropped: number;
  readonly snapshotsSent: number;
  readonly snapshotsSendFailed: number;
  readonly snapshotsReceived: number;
  readonly compactions: number;
}

type MutableStats = { -readonly [K in keyof RaftHostStats]: RaftHostStats[K] };

const zeroStats = (): MutableStats => ({
  turns: 0,
  storeWrites: 0,
  syncedWrites: 0,
  entriesPersisted: 0,
  entriesApplied: 0,
  proposals: 0,
  messagesSent: 0,
  framesSent: 0,
  messagesReceived: 0,
  messagesDropped: 0,
  snapshotsSent: 0,
  snapshotsSendFailed: 0,
  snapshotsReceived: 0,
  compactions: 0,
});

const failure = (code: Failure['code'], message?: string, leader?: NodeId | null): Failure => ({
  ok: false,
  code,
  ...(message !== undefined ? { message } : {}),
  ...(leader !== undefined ? { leader } : {}),
});

// ---------------------------------------------------------------------------------------------
// Requests: one waiter per propose/readIndex/changeMembership call, settled exactly once.

type Stage = 'queued' | 'pending' | 'read';

class Request<Outcome> {
  done = false;
  stage: Stage;

  constructor(
    readonly deadlineMs: number,
    stage: Stage,
    private readonly settle: (outcome: Outcome | Failure) => void,
    private readonly onDone: (stage: Stage) => void,
  ) {
    this.stage = stage;
  }

  finish(outcome: Outcome | Failure): void {
    if (this.done) return;
    this.done = true;
    this.onDone(this.stage);
    this.settle(outcome);
  }
}

interface Expirable {
  readonly deadlineMs: number;
  readonly done: boolean;
  finish(outcome: Failure): void;
}

/**
 * Deadlines in one FIFO per distinct timeout: requests sharing a timeout expire in arrival order, so
 * expiry is O(expired) with no heap. Settled requests are skipped when they reach the head.
 */
class Deadlines {
  private readonly queues = new Map<number, { items: Expirable[]; head: number }>();

  add(timeoutMs: number, request: Expirable): void {
    let queue = this.queues.get(timeoutMs);
    if (queue === undefined) {
      queue = { items: [], head: 0 };
      this.queues.set(timeoutMs, queue);
    }
    queue.items.push(request);
  }

  expire(nowMs: number, outcome: Failure): void {
    for (const queue of this.queues.values()) {
      while (queue.head < queue.items.length) {
        const request = queue.items[queue.head] as Expirable;
        if (!request.done && request.deadlineMs > nowMs) break;
        request.finish(outcome);
        queue.head += 1;
      }
      // Drop the consumed prefix now and then so the array does not grow without bound.
      if (queue.head > 1024 && queue.head * 2 > queue.items.length) {
        queue.items.splice(0, queue.head);
        queue.head = 0;
      }
    }
  }

  /** Every request still tracked (settled ones included); used on shutdown. */
  *all(): Iterable<Expirable> {
    for (const queue of this.queues.values()) {
      for (let i = queue.head; i < queue.items.length; i += 1) yield queue.items[i] as Expirable;
    }
  }
}

type Proposal<Result> =
  | { readonly kind: 'normal'; readonly data: Uint8Array; readonly request: Request<ProposeOutcome<Result>> }
  | {
      readonly kind: 'conf';
      readonly change: ConfChange;
      readonly request: Request<ProposeOutcome<ConfState>>;
    };

interface PendingProposal<Result> {
  readonly term: Term;
  readonly proposal: Proposal<Result>;
}

interface ReadWaiter {
  readonly request: Request<ReadOutcome>;
  /** Known once the core emitted the ReadState. */
  index: Index;
}

interface InboundSnapshot {
  readonly message: Message;
  readonly pairs: readonly (readonly [Uint8Array, Uint8Array])[];
  readonly resolve: (installed: boolean) => void;
  stepped: boolean;
}

// ---------------------------------------------------------------------------------------------
// One group on this node.

interface GroupInit {
  readonly core: RawNodeApi;
  readonly log: GroupLogIndex;
  readonly compaction: SnapshotMeta;
  readonly applied: AppliedState;
  readonly confHistory: { readonly index: Index; readonly conf: ConfState }[];
  /** The term and vote of the hard state in the store. */
  readonly durable: TermAndVote;
}

class GroupReplica<Result> {
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
   * a hard state that differs only in commit is not written at all (see persist).
   */
  durable: TermAndVote;

  readonly inbox: Message[] = [];
  readonly proposals: Proposal<Result>[] = [];
  readonly reads: ReadWaiter[] = [];
  readonly transfers: NodeId[] = [];
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
}

// ---------------------------------------------------------------------------------------------
// Seeded per-group randomness: one stream per group, independent of the order groups are created in.

const mix32 = (value: number): number => {
  let x = value | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
};

/** mulberry32: small, fast and good enough for election jitter. */
const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
};

// ---------------------------------------------------------------------------------------------

interface ReadyWork<Result> {
  readonly replica: GroupReplica<Result>;
  readonly ready: Ready;
  /** Messages that may leave only once this Ready is durable (all of them unless sendEarly ran). */
  afterPersist?: readonly Message[];
}

interface PersistOutcome<Result> {
  /** Readys that installed a snapshot in this write. */
  readonly installs: readonly ReadyWork<Result>[];
  /** Groups whose applied index became durable with this write. */
  readonly flushed: readonly GroupReplica<Result>[];
}

export class RaftHost<Result = unknown> implements DrivableHost<Result> {
  private readonly replicas = new Map<GroupId, GroupReplica<Result>>();
  /** Groups with something for the next turn: queued input, or a core that may have a Ready. */
  private readonly dirty = new Set<GroupReplica<Result>>();
  /** Groups with state-machine writes not yet handed to the store. */
  private readonly unflushed = new Set<GroupReplica<Result>>();
  private readonly led = new Set<GroupReplica<Result>>();
  /** Messages and snapshots for groups this node does not have yet, adopted (or dropped) next turn. */
  private readonly unknownInbox = new Map<
    GroupId,
    { from: NodeId; messages: Message[]; snapshot?: InboundSnapshot }
  >();
  private readonly bootstrapping = new Map<GroupId, Promise<void>>();
  /** Log compaction ops (meta and batch deletes) for the start of the next write; never dropped. */
  private logOps: BatchOp[] = [];
  /** Messages per peer waiting for the next flush (see hold). */
  private readonly outbox = new Map<NodeId, GroupMessage[]>();
  private readonly deadlines = new Deadlines();
  private readonly stats_: MutableStats = zeroStats();
  private readonly hostSeed: number;
  private readonly store: KvStore;
  private readonly stateMachine: StateMachine<Result>;

  private inboundCount = 0;
  private queuedProposals = 0;
  private pendingProposals = 0;
  /**
   * Contexts of this incarnation's reads. A ReadIndexResp can outlive the process that asked for it
   * (queued by the leader's transport while this node restarted); a counter restarting at 1 would hand
   * that stale index to a new read with the same number, serving a stale read. The random prefix keeps
   * each incarnation's contexts apart.
   */
  private readonly readContextBase: number;
  private readCounter = 0;
  private deferredTicks = 0;
  private turnInFlight: Promise<void> | undefined;
  private closed = false;
  private failed = false;
  private workListener: (() => void) | undefined;

  private constructor(private readonly options: RaftHostOptions<Result>) {
    this.store = options.store;
    this.stateMachine = options.stateMachine;
    this.hostSeed = Math.floor(options.random() * 0x1_0000_0000);
    this.readContextBase = Math.floor(options.random() * READ_PREFIX_SPAN) * READ_COUNTER_SPAN;
  }

  /** Recovers every group found in the store and starts the transport with this host's handlers. */
  static async open<Result>(options: RaftHostOptions<Result>): Promise<RaftHost<Result>> {
    const host = new RaftHost<Result>(options);
    await host.recover();
    await options.transport.start(host.handlers());
    return host;
  }

  // -------------------------------------------------------------------------------------------
  // ConsensusHost

  propose(
    group: GroupId,
    data: Uint8Array,
    options?: { readonly timeoutMs?: number },
  ): Promise<ProposeOutcome<Result>> {
    if (data.length === 0) {
      // An empty Normal entry is Raft's no-op: it is never handed to the state machine.
      return Promise.reject(new RangeError('propose: data must not be empty'));
    }
    return this.enqueueProposal<ProposeOutcome<Result>>(group, options?.timeoutMs, (request) => ({
      kind: 'normal',
      data,
      request,
    }));
  }

  changeMembership(
    group: GroupId,
    change: ConfChange,
    options?: { readonly timeoutMs?: number },
  ): Promise<ProposeOutcome<ConfState>> {
    return this.enqueueProposal<ProposeOutcome<ConfState>>(group, options?.timeoutMs, (request) => ({
      kind: 'conf',
      change,
      request,
    }));
  }

  readIndex(group: GroupId, options?: { readonly timeoutMs?: number }): Promise<ReadOutcome> {
    const refused = this.refuse(group);
    if (refused !== undefined) return Promise.resolve(refused);
    const replica = this.replicas.get(group) as GroupReplica<Result>;
    return new Promise<ReadOutcome>((resolve) => {
      const request = this.newRequest<ReadOutcome>(options?.timeoutMs, 'read', resolve);
      replica.reads.push({ request, index: 0 });
      this.markDirty(replica);
      this.wake();
    });
  }

  leaderOf(group: GroupId): NodeId | null {
    return this.replicas.get(group)?.leader ?? null;
  }

  status(group: GroupId): GroupStatus | undefined {
    const replica = this.replicas.get(group);
    return replica === undefined ? undefined : { ...replica.core.status(), group };
  }

  groups(): readonly GroupId[] {
    return [...this.replicas.keys()].sort((a, b) => a - b);
  }

  transferLeader(group: GroupId, to: NodeId): void {
    const replica = this.replicas.get(group);
    if (replica === undefined || this.closed) return;
    replica.transfers.push(to);
    this.markDirty(replica);
    this.wake();
  }

  groupKv(group: GroupId): GroupKv {
    return this.replicas.get(group)?.kv ?? new StoreGroupKv(this.store, group);
  }

  // -------------------------------------------------------------------------------------------
  // DrivableHost

  async bootstrapGroup(group: GroupId, voters: readonly NodeId[]): Promise<void> {
    if (this.replicas.has(group)) return;
    const inFlight = this.bootstrapping.get(group);
    if (inFlight !== undefined) return inFlight;
    const done = this.writeBootstrap(group, voters).finally(() => this.bootstrapping.delete(group));
    this.bootstrapping.set(group, done);
    return done;
  }

  tick(): void {
    if (this.closed || this.failed) return;
    // A core is never ticked between its ready() and advance(): a turn in flight takes the tick later.
    if (this.turnInFlight !== undefined) this.deferredTicks += 1;
    else this.tickGroups(1);
    this.deadlines.expire(this.options.now(), failure('TIMEOUT', 'request timed out'));
  }

  hasWork(): boolean {
    if (this.closed || this.failed) return false;
    return (
      this.dirty.size > 0 ||
      this.unflushed.size > 0 ||
      this.unknownInbox.size > 0 ||
      this.logOps.length > 0 ||
      this.deferredTicks > 0
    );
  }

  async turn(): Promise<void> {
    if (this.closed || this.failed) return;
    if (this.turnInFlight !== undefined) throw new Error('RaftHost.turn: turns must not overlap');
    const endTimer = this.options.timers?.turn();
    const turn = this.runTurn().catch((error: unknown) => this.reportFatal(error));
    this.turnInFlight = turn;
    try {
      await turn;
    } finally {
      this.turnInFlight = undefined;
      endTimer?.();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.turnInFlight !== undefined) await this.turnInFlight;
    // Answers held for a turn that will not come now: they are durable, so they still leave.
    this.flushOutbox();
    this.settleEverything();
  }

  /**
   * Drops this node's replica of `group` and deletes its data, for a replica its group has removed
   * (the caller checks that with the group's leader: a replica that is still a member must never be
   * forgotten). Waiters on the group time out. Resolves false if there was nothing to forget.
   */
  async forgetGroup(group: GroupId): Promise<boolean> {
    // Detached between turns, synchronously, so no turn touches the replica again.
    while (this.turnInFlight !== undefined) await this.turnInFlight;
    const replica = this.replicas.get(group);
    if (replica === undefined || replica.isLeader || this.closed || this.failed) return false;
    if (this.bootstrapping.has(group)) return false;
    this.replicas.delete(group);
    this.dirty.delete(replica);
    this.unflushed.delete(replica);
    this.led.delete(replica);
    replica.inboundSnapshot?.resolve(false);
    replica.inboundSnapshot = undefined;
    // Queued compaction writes of the group must not land after the delete (a stale log meta would
    // be taken for the compaction point of a replica created here later).
    this.logOps = this.logOps.filter((op) => keyGroup(op.key) !== group);
    // The hard state goes in the same write as the rest: recovery only knows groups that have one.
    const deleting = (async (): Promise<void> => {
      const ops: BatchOp[] = [
        { type: 'del', key: hardStateKey(group) },
        { type: 'del', key: logMetaKey(group) },
      ];
      const logPrefix = Uint8Array.of(KeyKind.LogBatch, group >>> 8, group & 0xff);
      for (const range of [prefixRange(logPrefix), prefixRange(groupSpacePrefix(group))]) {
        for await (const [key] of this.store.iterate(range)) ops.push({ type: 'del', key });
      }
      await this.store.write(ops, { sync: true });
      await this.stateMachine.restored(group, { index: 0, term: 0, conf: EMPTY_CONF });
    })();
    // Meanwhile messages for the group are not adopted as a new replica (see adoptUnknownGroups).
    this.bootstrapping.set(group, deleting);
    try {
      await deleting;
      return true;
    } catch (error) {
      this.reportFatal(error);
      return false;
    } finally {
      this.bootstrapping.delete(group);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Hooks for the loop driver and for metrics.

  /** `listener` is called whenever new input arrives, so an idle loop can schedule a turn. */
  onWork(listener: (() => void) | undefined): void {
    this.workListener = listener;
  }

  /** Stops the host for good and tells the owner (options.onFatal), once. */
  reportFatal(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.settleEverything();
    this.options.onFatal(error instanceof Error ? error : new Error(String(error)));
  }

  stats(): RaftHostStats {
    return { ...this.stats_ };
  }

  // -------------------------------------------------------------------------------------------
  // Transport inbound: only enqueue.

  private handlers(): TransportHandlers {
    return {
      onMessages: (from, batch) => this.onMessages(from, batch),
      onSnapshot: (from, group, message, pairs) => this.onSnapshot(from, group, message, pairs),
    };
  }

  private onMessages(from: NodeId, batch: readonly GroupMessage[]): void {
    if (this.closed || this.failed) return;
    this.stats_.messagesReceived += batch.length;
    for (const { group, message } of batch) {
      // Snapshots arrive only through onSnapshot, with their data.
      if (this.inboundCount >= this.options.limits.inboundQueueMax || message.type === MessageType.Snap) {
        this.stats_.messagesDropped += 1;
        continue;
      }
      const replica = this.replicas.get(group);
      if (replica !== undefined) {
        replica.inbox.push(message);
        this.markDirty(replica);
      } else {
        this.unknownEntry(group, from).messages.push(message);
      }
      this.inboundCount += 1;
    }
    this.wake();
  }

  private onSnapshot(
    from: NodeId,
    group: GroupId,
    message: Message,
    pairs: readonly (readonly [Uint8Array, Uint8Array])[],
  ): Promise<boolean> {
    if (this.closed || this.failed || message.type !== MessageType.Snap || message.snapshot === undefined) {
      return Promise.resolve(false);
    }
    const replica = this.replicas.get(group);
    const pendingUnknown = this.unknownInbox.get(group)?.snapshot;
    if (replica?.inboundSnapshot !== undefined || pendingUnknown !== undefined) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const inbound: InboundSnapshot = { message, pairs, resolve, stepped: false };
      if (replica !== undefined) {
        replica.inboundSnapshot = inbound;
        this.markDirty(replica);
      } else {
        this.unknownEntry(group, from).snapshot = inbound;
      }
      this.wake();
    });
  }

  private unknownEntry(
    group: GroupId,
    from: NodeId,
  ): { from: NodeId; messages: Message[]; snapshot?: InboundSnapshot } {
    let entry = this.unknownInbox.get(group);
    if (entry === undefined) {
      entry = { from, messages: [] };
      this.unknownInbox.set(group, entry);
    }
    return entry;
  }

  // -------------------------------------------------------------------------------------------
  // The turn.

  private async runTurn(): Promise<void> {
    this.stats_.turns += 1;
    this.adoptUnknownGroups();
    this.reportUnreachable();
    const work = [...this.dirty];
    this.dirty.clear();
    for (const replica of work) this.feed(replica);
    const readys = this.collectReadys(work);
    this.sendEarly(readys);
    // Committed entries are durable on a quorum already (the core never hands out one past its own
    // stable index), so they apply and answer now instead of waiting for this turn's fsync, and their
    // state-machine writes ride in that same write. A Ready that installs a snapshot applies after it.
    const installing = readys.filter((item) => item.ready.snapshot !== undefined);
    await Promise.all(
      readys.filter((item) => item.ready.snapshot === undefined).map((item) => this.applyAndResolve(item)),
    );
    const { installs, flushed } = await this.persist(readys);
    for (const { replica, ready } of readys) this.observeSoftState(replica, ready);
    this.hold(readys);
    await this.finishInstalls(installs);
    await Promise.all(installing.map((item) => this.applyAndResolve(item)));
    const alone: ReadyWork<Result>[] = [];
    for (const item of readys) {
      item.replica.core.advance(item.ready);
      if (this.commitsAlone(item)) alone.push(item);
      else if (item.replica.core.hasReady()) this.markDirty(item.replica);
    }
    await this.commitAlone(alone);
    // Cores are between Readys again: compaction and deferred ticks may touch them.
    for (const replica of flushed) this.maybeCompact(replica);
    if (this.deferredTicks > 0) {
      const ticks = this.deferredTicks;
      this.deferredTicks = 0;
      this.tickGroups(ticks);
    }
    // With no turn to follow, nothing would carry the held messages: they leave now.
    if (!this.hasWork()) this.flushOutbox();
  }

  /**
   * A group whose only member is this node committed the entries it just persisted the moment advance()
   * counted our own copy: nothing else has to happen before they apply.
   */
  private commitsAlone({ replica, ready }: ReadyWork<Result>): boolean {
    return ready.entries.length > 0 && replica.isLeader && this.isAlone(replica) && replica.core.hasReady();
  }

  /** This node is the group's only member (no other voter, no learner). */
  private isAlone(replica: GroupReplica<Result>): boolean {
    const conf = replica.applied.conf;
    return conf.learners.length === 0 && conf.voters.length === 1 && conf.voters[0] === this.options.nodeId;
  }

  /**
   * Applies and resolves, in this same turn, what lone-member groups committed when advance() counted
   * the entries this turn persisted, instead of waiting a whole turn (one more store write) for it.
   * Nothing was stepped since advance(), so such a Ready holds only committed entries and a commit-only
   * hard state, which is never written (see persist); the applied record goes with the next write.
   */
  private async commitAlone(alone: readonly ReadyWork<Result>[]): Promise<void> {
    if (alone.length === 0) return;
    const readys = alone.map(({ replica }) => ({ replica, ready: replica.core.ready() }));
    for (const { replica, ready } of readys) {
      if (
        ready.entries.length > 0 ||
        ready.snapshot !== undefined ||
        ready.messages.length > 0 ||
        ready.mustSync
      ) {
        throw new Error(`group ${replica.group}: a lone member's commit Ready carries more than commits`);
      }
      this.observeSoftState(replica, ready);
    }
    await Promise.all(readys.map((item) => this.applyAndResolve(item)));
    for (const { replica, ready } of readys) {
      replica.core.advance(ready);
      if (replica.core.hasReady()) this.markDirty(replica);
    }
  }

  /** (b) The Ready of every group that has one. A stepped snapshot the core did not take is refused. */
  private collectReadys(work: readonly GroupReplica<Result>[]): ReadyWork<Result>[] {
    const readys: ReadyWork<Result>[] = [];
    for (const replica of work) {
      const ready = replica.core.hasReady() ? replica.core.ready() : undefined;
      if (ready !== undefined) readys.push({ replica, ready });
      const inbound = replica.inboundSnapshot;
      if (inbound?.stepped === true && ready?.snapshot === undefined) {
        inbound.resolve(false);
        replica.inboundSnapshot = undefined;
      }
    }
    return readys;
  }

  /** (a) Steps queued input into the group's core. */
  private feed(replica: GroupReplica<Result>): void {
    const core = replica.core;
    const inbound = replica.inboundSnapshot;
    if (inbound !== undefined && !inbound.stepped) {
      inbound.stepped = true;
      core.step(inbound.message);
    }
    this.inboundCount -= replica.inbox.length;
    for (const message of replica.inbox) core.step(message);
    replica.inbox.length = 0;
    for (const { peer, ok } of replica.snapshotReports) core.reportSnapshot(peer, ok);
    replica.snapshotReports.length = 0;
    for (const to of replica.transfers) core.transferLeader(to);
    replica.transfers.length = 0;
    for (const proposal of replica.proposals) this.handOff(replica, proposal);
    replica.proposals.length = 0;
    for (const read of replica.reads) this.startRead(replica, read);
    replica.reads.length = 0;
  }

  private handOff(replica: GroupReplica<Result>, proposal: Proposal<Result>): void {
    const request = proposal.request;
    if (request.done) return;
    if (this.pendingProposals >= this.options.limits.pendingProposalsMax) {
      request.finish(failure('OVERLOADED', 'too many proposals in flight'));
      return;
    }
    const result: ProposeResult =
      proposal.kind === 'normal'
        ? replica.core.propose(proposal.data)
        : replica.core.proposeConfChange(proposal.change);
    if (!result.ok) {
      request.finish(proposeFailure(result));
      return;
    }
    this.queuedProposals -= 1;
    this.pendingProposals += 1;
    request.stage = 'pending';
    // Only one entry can hold an index in the log that gets committed: an older waiter there lost.
    replica.pending.get(result.index)?.proposal.request.finish(failure('DROPPED', 'overwritten'));
    replica.pending.set(result.index, { term: result.term, proposal });
  }

  private startRead(replica: GroupReplica<Result>, read: ReadWaiter): void {
    if (read.request.done) return;
    this.readCounter = (this.readCounter % (READ_COUNTER_SPAN - 1)) + 1;
    const context = this.readContextBase + this.readCounter;
    const result = replica.core.readIndex(context);
    if (!result.ok) {
      read.request.finish(failure('NOT_LEADER', 'no leader to serve the read', result.leader));
      return;
    }
    replica.readsByContext.set(context, read);
    // A core drops reads on a leader change; their waiters time out, and the map forgets them here.
    if (replica.readsByContext.size > replica.readSweepAt) {
      for (const [key, waiter] of replica.readsByContext) {
        if (waiter.request.done) replica.readsByContext.delete(key);
      }
      replica.readSweepAt = Math.max(READ_SWEEP_MIN, 2 * replica.readsByContext.size);
    }
  }

  /**
   * (c) One store write for every Ready of this turn plus the state-machine writes, applied records
   * and compaction ops produced since the last write. Synced when any Ready demands it.
   *
   * A hard state is written only when its term or vote changed. The commit index is knowledge Raft
   * can always relearn (the paper keeps it volatile), and the applied record already says how far this
   * node's commit reached: recovery takes the larger of the two. That saves one store op per group
   * per turn on every replica.
   */
  private async persist(readys: readonly ReadyWork<Result>[]): Promise<PersistOutcome<Result>> {
    const installs = readys.filter((item) => item.ready.snapshot !== undefined);
    // Writes of earlier applies describe state a snapshot replaces: drop them before collecting.
    for (const { replica } of installs) this.discardUnflushed(replica);
    // Order matters within the batch: older compaction ops first, then applies, then this turn's Readys.
    const ops = this.logOps;
    this.logOps = [];
    const flushed = this.collectUnflushed(ops);
    for (const item of installs) await this.installOps(item, ops);
    let sync = installs.length > 0;
    for (const { replica, ready } of readys) {
      if (ready.entries.length > 0) {
        replica.log.append(ready.entries, ops);
        this.stats_.entriesPersisted += ready.entries.length;
      }
      const hardState = ready.hardState;
      if (hardState !== undefined && !sameTermAndVote(hardState, replica.durable)) {
        ops.push({ type: 'put', key: hardStateKey(replica.group), value: encodeHardState(hardState) });
      }
      if (ready.mustSync) sync = true;
    }
    if (ops.length > 0) {
      const endTimer = sync ? this.options.timers?.syncedWrite() : undefined;
      await this.store.write(ops, { sync });
      endTimer?.();
      this.stats_.storeWrites += 1;
      if (sync) this.stats_.syncedWrites += 1;
    }
    for (const { replica, ready } of readys) {
      const hardState = ready.hardState;
      if (hardState !== undefined) replica.durable = { term: hardState.term, vote: hardState.vote };
    }
    for (const [replica, index] of flushed) {
      if (index > replica.persistedApplied) {
        replica.logBytes += replica.core.logBytesBetween(replica.persistedApplied, index);
      }
      replica.persistedApplied = Math.max(replica.persistedApplied, index);
      this.stateMachine.persisted?.(replica.group, index);
    }
    return { installs, flushed: flushed.map(([replica]) => replica) };
  }

  private discardUnflushed(replica: GroupReplica<Result>): void {
    replica.unflushedOps.length = 0;
    replica.appliedUnflushed = false;
    this.unflushed.delete(replica);
  }

  private collectUnflushed(ops: BatchOp[]): [GroupReplica<Result>, Index][] {
    const flushed: [GroupReplica<Result>, Index][] = [];
    for (const replica of this.unflushed) {
      for (const op of replica.unflushedOps) ops.push(op);
      replica.unflushedOps.length = 0;
      if (replica.appliedUnflushed) {
        ops.push({
          type: 'put',
          key: appliedStateKey(replica.group),
          value: encodeAppliedState(replica.applied),
        });
        replica.appliedUnflushed = false;
        flushed.push([replica, replica.applied.index]);
      }
    }
    this.unflushed.clear();
    return flushed;
  }

  /**
   * Ops that replace a group's whole snapshot space and log with a received snapshot. LevelDB batches
   * have no range delete, so the existing keys are listed first.
   */
  private async installOps({ replica, ready }: ReadyWork<Result>, ops: BatchOp[]): Promise<void> {
    const inbound = replica.inboundSnapshot;
    const meta = ready.snapshot as SnapshotMeta;
    if (inbound === undefined || inbound.message.snapshot?.index !== meta.index) {
      throw new Error(
        `group ${replica.group}: Ready carries a snapshot at ${meta.index} the host did not step`,
      );
    }
    for await (const [key] of this.store.iterate(prefixRange(groupSpacePrefix(replica.group)))) {
      ops.push({ type: 'del', key });
    }
    replica.log.clear(ops);
    for (const [relative, value] of inbound.pairs) {
      ops.push({ type: 'put', key: groupSpaceKey(replica.group, relative), value });
    }
    ops.push({ type: 'put', key: logMetaKey(replica.group), value: encodeSnapshotMeta(meta) });
    ops.push({ type: 'put', key: appliedStateKey(replica.group), value: encodeAppliedState(meta) });
  }

  /** After the install write: the group now stands at the snapshot; tell the state machine. */
  private async finishInstalls(installs: readonly ReadyWork<Result>[]): Promise<void> {
    for (const { replica, ready } of installs) {
      const meta = ready.snapshot as SnapshotMeta;
      replica.compaction = meta;
      replica.applied = meta;
      replica.persistedApplied = meta.index;
      replica.confHistory = [];
      replica.logBytes = 0;
      for (const [index, pending] of replica.pending) {
        if (index > meta.index) continue;
        replica.pending.delete(index);
        pending.proposal.request.finish(failure('TIMEOUT', 'outcome unknown: replaced by a snapshot'));
      }
      await this.stateMachine.restored(replica.group, meta);
      this.stats_.snapshotsReceived += 1;
      replica.inboundSnapshot?.resolve(true);
      replica.inboundSnapshot = undefined;
      this.resolveReads(replica);
    }
  }

  private observeSoftState(replica: GroupReplica<Result>, ready: Ready): void {
    const soft = ready.softState;
    if (soft === undefined) return;
    replica.leader = soft.leader;
    replica.isLeader = soft.role === 'leader';
    if (replica.isLeader) this.led.add(replica);
    else this.led.delete(replica);
  }

  /**
   * Raft thesis §10.2.1: a leader may replicate entries while it writes them to its own disk, because
   * its own copy only counts toward the commit index once advance() reports it durable. So a leader's
   * App and Heartbeat messages leave before the write, and follower and leader fsync overlap instead of
   * running one after the other. Only when the term they carry is already on disk (with the vote for
   * it): a message of a term this very write records must wait for it. Everything else — answers to
   * the leader, votes, snapshots — still waits for the write.
   */
  private sendEarly(readys: ReadyWork<Result>[]): void {
    const early: ReadyWork<Result>[] = [];
    for (const item of readys) {
      const { replica, ready } = item;
      if (!replica.isLeader || ready.messages.length === 0) continue;
      const after: Message[] = [];
      const now: Message[] = [];
      for (const message of ready.messages) {
        const replicates = message.type === MessageType.App || message.type === MessageType.Heartbeat;
        if (replicates && message.term === replica.durable.term) now.push(message);
        else after.push(message);
      }
      if (now.length === 0) continue;
      item.afterPersist = after;
      early.push({ replica, ready: { ...ready, messages: now } });
    }
    this.hold(early);
    // Also the previous turn's answers, if they waited for this turn (see runTurn's end).
    this.flushOutbox();
  }

  /**
   * (d) Queues every group's messages in the outbox, one frame per peer; Snap messages stream
   * separately. A turn's answers wait there for the next turn's early messages when that turn follows
   * at once, so one frame per peer carries both: frames, not messages, are what the transport pays for
   * (about 50 µs of CPU each through grpc-js; in the cluster benchmark this cut frames per append by a
   * fifth). They wait no longer than the next turn takes to step its input; Raft tolerates any delay.
   */
  private hold(readys: readonly ReadyWork<Result>[]): void {
    for (const { replica, ready, afterPersist } of readys) {
      for (const message of afterPersist ?? ready.messages) {
        if (message.type === MessageType.Snap) {
          this.sendSnapshot(replica, message);
          continue;
        }
        let frame = this.outbox.get(message.to);
        if (frame === undefined) {
          frame = [];
          this.outbox.set(message.to, frame);
        }
        frame.push({ group: replica.group, message });
      }
    }
  }

  private flushOutbox(): void {
    for (const [peer, frame] of this.outbox) {
      this.options.transport.send(peer, frame);
      this.stats_.framesSent += 1;
      this.stats_.messagesSent += frame.length;
    }
    this.outbox.clear();
  }

  private sendSnapshot(replica: GroupReplica<Result>, message: Message): void {
    const peer = message.to;
    // One transfer per (group, peer): the core hears about the one in flight when it ends.
    if (replica.snapshotsSending.has(peer)) return;
    replica.snapshotsSending.add(peer);
    this.stats_.snapshotsSent += 1;
    // The iterator is opened now, pinning the durable state the metadata will describe.
    const pairs = this.store.iterate(prefixRange(groupSpacePrefix(replica.group)));
    const report = (ok: boolean): void => {
      replica.snapshotsSending.delete(peer);
      if (!ok) this.stats_.snapshotsSendFailed += 1;
      if (this.closed || this.failed || this.replicas.get(replica.group) !== replica) return;
      replica.snapshotReports.push({ peer, ok });
      this.markDirty(replica);
      this.wake();
    };
    void this.options.transport
      .sendSnapshot(peer, snapshotChunks(replica.group, message, pairs))
      .then(report, () => report(false));
  }

  /** (e) + (f) Applies one group's committed entries in order and resolves its waiters. */
  private async applyAndResolve({ replica, ready }: ReadyWork<Result>): Promise<void> {
    const entries = ready.committedEntries;
    let runStart = 0;
    for (let i = 0; i < entries.length; i += 1) {
      const entry = entries[i] as Entry;
      if (entry.kind === EntryKind.Normal && entry.data.length > 0) continue;
      await this.applyRun(replica, entries, runStart, i);
      runStart = i + 1;
      if (entry.kind === EntryKind.Conf) this.applyConf(replica, entry);
      else this.settleProposal(replica, entry, NO_RESULT);
    }
    await this.applyRun(replica, entries, runStart, entries.length);
    const last = entries.at(-1);
    if (last !== undefined) {
      replica.applied = { index: last.index, term: last.term, conf: replica.applied.conf };
      replica.appliedUnflushed = true;
      this.unflushed.add(replica);
      this.stats_.entriesApplied += entries.length;
    }
    for (const state of ready.readStates) {
      const read = replica.readsByContext.get(state.context);
      if (read === undefined) continue;
      replica.readsByContext.delete(state.context);
      read.index = state.index;
      replica.readsWaitingApply.push(read);
    }
    this.resolveReads(replica);
  }

  /** Hands entries[from, to) (all non-empty Normal entries) to the state machine in one call. */
  private async applyRun(
    replica: GroupReplica<Result>,
    entries: readonly Entry[],
    from: number,
    to: number,
  ): Promise<void> {
    if (to <= from) return;
    const run = from === 0 && to === entries.length ? entries : entries.slice(from, to);
    const batch = new PrefixedWriteBatch(replica.group, replica.unflushedOps);
    const results = await this.stateMachine.apply(replica.group, run, batch, replica.kv);
    if (results.length !== run.length) {
      throw new Error(
        `group ${replica.group}: state machine returned ${results.length} results for ${run.length}`,
      );
    }
    this.unflushed.add(replica);
    for (let i = 0; i < run.length; i += 1) {
      this.settleProposal(replica, run[i] as Entry, { result: results[i] as Result });
    }
  }

  private applyConf(replica: GroupReplica<Result>, entry: Entry): void {
    const conf = replica.core.applyConfChange(decodeConfChange(entry.data));
    replica.applied = { index: entry.index, term: entry.term, conf };
    replica.confHistory.push({ index: entry.index, conf });
    const pending = replica.pending.get(entry.index);
    if (pending === undefined) return;
    replica.pending.delete(entry.index);
    this.pendingSettled(pending, entry, (proposal) =>
      proposal.kind === 'conf'
        ? proposal.request.finish({ ok: true, index: entry.index, result: conf })
        : false,
    );
  }

  /** Resolves the waiter of a Normal entry (the no-op has no result: a waiter there lost its index). */
  private settleProposal(
    replica: GroupReplica<Result>,
    entry: Entry,
    applied: { readonly result: Result } | typeof NO_RESULT,
  ): void {
    const pending = replica.pending.get(entry.index);
    if (pending === undefined) return;
    replica.pending.delete(entry.index);
    this.pendingSettled(pending, entry, (proposal) =>
      proposal.kind === 'normal' && applied !== NO_RESULT
        ? proposal.request.finish({ ok: true, index: entry.index, result: applied.result })
        : false,
    );
  }

  /** Our entry committed iff the applied entry at its index has its term; otherwise it was dropped. */
  private pendingSettled(
    pending: PendingProposal<Result>,
    entry: Entry,
    succeed: (proposal: Proposal<Result>) => void | false,
  ): void {
    if (pending.term === entry.term && succeed(pending.proposal) !== false) return;
    pending.proposal.request.finish(failure('DROPPED', 'another entry was committed at this index'));
  }

  private resolveReads(replica: GroupReplica<Result>): void {
    const waiting = replica.readsWaitingApply;
    if (waiting.length === 0) return;
    let kept = 0;
    for (const read of waiting) {
      if (read.index <= replica.applied.index) read.request.finish({ ok: true, index: read.index });
      else if (!read.request.done) waiting[kept++] = read;
    }
    waiting.length = kept;
  }

  // -------------------------------------------------------------------------------------------
  // Log compaction.

  /**
   * Once the durable applied index is more than `logRetainEntries` past the compaction point, compact to
   * half that distance behind it, but not past a healthy follower that is within reach of the log
   * (one lagging further gets a snapshot anyway).
   */
  private maybeCompact(replica: GroupReplica<Result>): void {
    // A lone member's log serves no follower: keep only a small batch of applied entries in memory.
    const retain = this.isAlone(replica)
      ? Math.min(LONE_LOG_RETAIN_ENTRIES, this.options.limits.logRetainEntries)
      : this.options.limits.logRetainEntries;
    const durable = replica.persistedApplied;
    const retainBytes = this.options.limits.logRetainBytes ?? LOG_RETAIN_BYTES_DEFAULT;
    // The log lives in memory: large entries are compacted by their bytes, not only by their count.
    const overBytes = replica.logBytes > retainBytes;
    if (!overBytes && (durable - replica.compaction.index <= retain || durable < replica.nextCompactionCheck))
      return;
    let target = durable - Math.floor(retain / 2);
    if (replica.isLeader) target = Math.min(target, this.slowestHealthyMatch(replica, durable - retain));
    if (overBytes) target = Math.max(target, this.bytesTarget(replica, durable, retainBytes));
    const term = replica.core.termAt(target);
    if (target <= replica.compaction.index || term === undefined) {
      replica.nextCompactionCheck = durable + Math.max(1, Math.floor(retain / 4));
      return;
    }
    const meta: SnapshotMeta = { index: target, term, conf: replica.confAt(target) };
    replica.log.compact(target, this.logOps);
    this.logOps.push({ type: 'put', key: logMetaKey(replica.group), value: encodeSnapshotMeta(meta) });
    replica.logBytes -= replica.core.logBytesBetween(replica.compaction.index, target);
    replica.core.compact(target, term, meta.conf);
    replica.compaction = meta;
    replica.confHistory = replica.confHistory.filter((change) => change.index > target);
    this.stats_.compactions += 1;
  }

  /**
   * Where to compact a log over its byte budget: down to half the budget, but for a healthy follower
   * still catching up (the inflight window) keep up to the whole budget; one further behind than that
   * gets a snapshot.
   */
  private bytesTarget(replica: GroupReplica<Result>, durable: Index, retainBytes: number): Index {
    const soft = replica.core.indexKeepingBytes(durable, Math.floor(retainBytes / 2));
    const hard = replica.core.indexKeepingBytes(durable, retainBytes);
    if (!replica.isLeader) return soft;
    return Math.max(hard, Math.min(soft, this.slowestHealthyMatch(replica, hard)));
  }

  private slowestHealthyMatch(replica: GroupReplica<Result>, reachableFrom: Index): Index {
    let slowest = Number.MAX_SAFE_INTEGER;
    const progress = replica.core.status().progress ?? {};
    for (const [peer, state] of Object.entries(progress)) {
      if (peer === this.options.nodeId || !state.recentActive || state.match < reachableFrom) continue;
      slowest = Math.min(slowest, state.match);
    }
    return slowest;
  }

  // -------------------------------------------------------------------------------------------
  // Groups: recovery, bootstrap, adoption.

  private async recover(): Promise<void> {
    const hardStates = new Map<GroupId, HardState>();
    for await (const [key, value] of this.store.iterate(kindRange(KeyKind.HardState))) {
      hardStates.set(keyGroup(key), decodeHardState(value));
    }
    const metas = new Map<GroupId, SnapshotMeta>();
    for await (const [key, value] of this.store.iterate(kindRange(KeyKind.LogMeta))) {
      metas.set(keyGroup(key), decodeSnapshotMeta(value, `log meta of group ${keyGroup(key)}`));
    }
    const batches = new Map<GroupId, [Index, Uint8Array][]>();
    for await (const [key, value] of this.store.iterate(kindRange(KeyKind.LogBatch))) {
      const group = keyGroup(key);
      let list = batches.get(group);
      if (list === undefined) {
        list = [];
        batches.set(group, list);
      }
      list.push([logBatchFirstIndex(key), value]);
    }
    for (const [group, hardState] of hardStates) {
      const stored = await this.store.get(appliedStateKey(group));
      const applied = stored === undefined ? undefined : decodeAppliedState(stored);
      this.recoverGroup(group, hardState, metas.get(group), batches.get(group) ?? [], applied);
    }
  }

  private recoverGroup(
    group: GroupId,
    hardState: HardState,
    meta: SnapshotMeta | undefined,
    batches: readonly [Index, Uint8Array][],
    stored: AppliedState | undefined,
  ): void {
    const compaction = meta ?? { index: 0, term: 0, conf: EMPTY_CONF };
    const { entries, index: log } = recoverGroupLog(group, batches, compaction);
    const applied = stored ?? compaction;
    if (applied.index < compaction.index) {
      throw new Error(`group ${group}: applied ${applied.index} is behind compaction ${compaction.index}`);
    }
    const confHistory = replayConfChanges(compaction.conf, entries, applied.index);
    const core = new RawNode(this.coreConfig(group), {
      // Commit-only hard states are not written: what this node applied was committed.
      hardState: { ...hardState, commit: Math.max(hardState.commit, applied.index) },
      snapshot: compaction,
      entries,
      applied: applied.index,
      conf: applied.conf,
    });
    this.addReplica(group, {
      core,
      log,
      compaction,
      applied,
      confHistory,
      durable: { term: hardState.term, vote: hardState.vote },
    });
  }

  private async writeBootstrap(group: GroupId, voters: readonly NodeId[]): Promise<void> {
    // Every bootstrapping node writes the same point, so a replica created later from nothing (index 0)
    // always needs, and gets, a snapshot that carries the membership.
    const conf: ConfState = { voters: [...voters], learners: [] };
    const meta: SnapshotMeta = { index: 1, term: 1, conf };
    const hardState: HardState = { term: 1, vote: null, commit: 1 };
    await this.store.write(
      [
        { type: 'put', key: hardStateKey(group), value: encodeHardState(hardState) },
        { type: 'put', key: logMetaKey(group), value: encodeSnapshotMeta(meta) },
        { type: 'put', key: appliedStateKey(group), value: encodeAppliedState(meta) },
      ],
      { sync: true },
    );
    if (this.replicas.has(group) || this.closed) return;
    const core = new RawNode(this.coreConfig(group), {
      hardState,
      snapshot: meta,
      entries: [],
      applied: 1,
      conf,
    });
    this.addReplica(group, {
      core,
      log: new GroupLogIndex(group),
      compaction: meta,
      applied: meta,
      confHistory: [],
      durable: { term: hardState.term, vote: hardState.vote },
    });
    this.wake();
  }

  /** Creates replicas for unknown groups the application accepts; drops the rest's input. */
  private adoptUnknownGroups(): void {
    if (this.unknownInbox.size === 0) return;
    for (const [group, { from, messages, snapshot }] of this.unknownInbox) {
      this.inboundCount -= messages.length;
      let replica = this.replicas.get(group);
      const accept = this.options.acceptUnknownGroup?.(group, from) ?? false;
      if (replica === undefined && accept && !this.bootstrapping.has(group))
        replica = this.createEmpty(group);
      if (replica === undefined) {
        this.stats_.messagesDropped += messages.length;
        snapshot?.resolve(false);
        continue;
      }
      for (const message of messages) replica.inbox.push(message);
      this.inboundCount += messages.length;
      if (snapshot !== undefined && replica.inboundSnapshot === undefined) replica.inboundSnapshot = snapshot;
      else snapshot?.resolve(false);
      this.markDirty(replica);
    }
    this.unknownInbox.clear();
  }

  /** A replica created from nothing: empty membership at index 0; the leader will send a snapshot. */
  private createEmpty(group: GroupId): GroupReplica<Result> {
    const compaction: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF };
    const core = new RawNode(this.coreConfig(group), {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: compaction,
      entries: [],
      applied: 0,
      conf: EMPTY_CONF,
    });
    return this.addReplica(group, {
      core,
      log: new GroupLogIndex(group),
      compaction,
      applied: compaction,
      confHistory: [],
      durable: { term: 0, vote: null },
    });
  }

  private addReplica(group: GroupId, init: GroupInit): GroupReplica<Result> {
    const replica = new GroupReplica<Result>(group, this.store, init);
    this.replicas.set(group, replica);
    const voters = init.applied.conf.voters;
    // A lone voter needs no election round trip: it leads in milliseconds.
    if (voters.length === 1 && voters[0] === this.options.nodeId) replica.core.campaign();
    this.markDirty(replica);
    return replica;
  }

  private coreConfig(group: GroupId): RaftConfig {
    const { options } = this;
    return {
      id: options.nodeId,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      random: seededRandom(mix32(this.hostSeed ^ Math.imul(group + 1, 0x9e3779b9))),
      preVote: options.preVote,
      checkQuorum: options.checkQuorum,
      maxInflightMsgs: options.limits.inflightMsgsMax,
      maxInflightBytes: options.limits.inflightBytesMax,
      maxMsgBytes: options.limits.msgBytesMax,
      maxUncommittedBytes: options.limits.uncommittedBytesMax,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Small helpers.

  private enqueueProposal<Outcome>(
    group: GroupId,
    timeoutMs: number | undefined,
    build: (request: Request<Outcome>) => Proposal<Result>,
  ): Promise<Outcome | Failure> {
    const refused = this.refuse(group);
    if (refused !== undefined) return Promise.resolve(refused);
    if (this.queuedProposals >= this.options.limits.proposalQueueMax) {
      return Promise.resolve(failure('OVERLOADED', 'proposal queue full'));
    }
    const replica = this.replicas.get(group) as GroupReplica<Result>;
    return new Promise<Outcome | Failure>((resolve) => {
      const request = this.newRequest<Outcome>(timeoutMs, 'queued', resolve);
      this.queuedProposals += 1;
      this.stats_.proposals += 1;
      replica.proposals.push(build(request));
      this.markDirty(replica);
      this.wake();
    });
  }

  private refuse(group: GroupId): Failure | undefined {
    if (this.closed || this.failed) return failure('SHUTTING_DOWN', 'host is closed');
    if (!this.replicas.has(group)) return failure('NO_GROUP', `group ${group} is not hosted here`);
    return undefined;
  }

  private newRequest<Outcome>(
    timeoutMs: number | undefined,
    stage: Stage,
    settle: (outcome: Outcome | Failure) => void,
  ): Request<Outcome> {
    const timeout = timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const request = new Request<Outcome>(this.options.now() + timeout, stage, settle, (settledStage) =>
      this.countSettled(settledStage),
    );
    this.deadlines.add(timeout, request);
    return request;
  }

  private countSettled(stage: Stage): void {
    if (stage === 'queued') this.queuedProposals -= 1;
    else if (stage === 'pending') this.pendingProposals -= 1;
  }

  private tickGroups(ticks: number): void {
    for (const replica of this.replicas.values()) {
      for (let i = 0; i < ticks; i += 1) replica.core.tick();
      if (replica.core.hasReady()) this.markDirty(replica);
    }
  }

  private reportUnreachable(): void {
    const peers = this.options.transport.drainUnreachable();
    if (peers.length === 0) return;
    for (const replica of this.led) {
      for (const peer of peers) replica.core.reportUnreachable(peer);
      this.markDirty(replica);
    }
  }

  private markDirty(replica: GroupReplica<Result>): void {
    this.dirty.add(replica);
  }

  private wake(): void {
    this.workListener?.();
  }

  /** Shutdown or failure: every waiter gets SHUTTING_DOWN, every queued snapshot `false`. */
  private settleEverything(): void {
    const shuttingDown = failure('SHUTTING_DOWN', 'host is closing');
    for (const request of this.deadlines.all()) request.finish(shuttingDown);
    for (const replica of this.replicas.values()) {
      replica.inboundSnapshot?.resolve(false);
      replica.inboundSnapshot = undefined;
    }
    for (const { snapshot } of this.unknownInbox.values()) snapshot?.resolve(false);
    this.unknownInbox.clear();
  }
}

const proposeFailure = (result: Exclude<ProposeResult, { ok: true }>): Failure => {
  switch (result.code) {
    case 'NOT_LEADER':
      return failure('NOT_LEADER', 'not the leader', result.leader);
    case 'TRANSFERRING':
      return failure('NOT_LEADER', 'leadership transfer in progress', null);
    case 'CONF_CHANGE_PENDING':
      return failure('OVERLOADED', 'a membership change is pending; retry later');
    case 'OVERLOADED':
      return failure('OVERLOADED', 'uncommitted log over its bound');
  }
};

/** The conf after each Conf entry up to `applied`, starting from the compaction point's conf. */
const replayConfChanges = (
  start: ConfState,
  entries: readonly Entry[],
  applied: Index,
): { index: Index; conf: ConfState }[] => {
  const history: { index: Index; conf: ConfState }[] = [];
  let conf = start;
  for (const entry of entries) {
    if (entry.index > applied) break;
    if (entry.kind !== EntryKind.Conf) continue;
    conf = applyConfChange(conf, decodeConfChange(entry.data));
    history.push({ index: entry.index, conf });
  }
  return history;
};
