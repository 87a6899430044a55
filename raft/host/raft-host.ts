// The multi-group host: drives every Raft group of this process in one loop. Inbound messages,
// proposals and reads only enqueue; each turn steps them into the cores, persists every group's Ready in
// ONE store write (group commit), sends one frame per peer (a turn's answers ride with the next turn's
// frame when one follows at once), applies committed entries and resolves the waiters, then advances
// the cores. Time and randomness come from the options (never Date or Math.random here), so the
// simulator can drive the same code by hand.
//
// This file is the public surface and the turn itself; each phase of a turn lives in its own file:
// inbound.ts (delivery), feed.ts (feed, collect), outbox.ts (send early, hold, flush), apply.ts
// (apply, settle), write-batch.ts (persist, install), advance.ts, compaction.ts. The replica and its
// waiters are in replica.ts and requests.ts, the hosted groups in groups.ts, and where a replica
// comes from (recovery, bootstrap, adoption) and how it is deleted in recovery.ts.

import type {
  DrivableHost,
  Failure,
  GroupKv,
  GroupStatus,
  KvStore,
  ProposeOutcome,
  RaftHostOptions,
  ReadOutcome,
  TransportHandlers,
} from '../api.js';
import type { ConfChange, ConfState, GroupId, Index, NodeId, RaftConfig, Term } from '../core/types.js';
import { isLaterPosition } from '../core/types.js';
import { StoreGroupKv } from '../storage/group-kv.js';
import { advance, type AdvanceContext } from './advance.js';
import { applyAndResolve, type ApplyContext } from './apply.js';
import { maybeCompact } from './compaction.js';
import { collectReadys, feed, ReadContexts, type FeedContext } from './feed.js';
import { Groups } from './groups.js';
import { Inbound } from './inbound.js';
import { Outbox } from './outbox.js';
import {
  EMPTY_CONF,
  bootstrappedGroup,
  coreConfig,
  deleteGroupOps,
  emptyGroup,
  recoverGroups,
  writeBootstrapPoint,
} from './recovery.js';
import { installsSnapshot, type GroupReplica, type Proposal, type ReadyWork } from './replica.js';
import { Requests, failure, type Request } from './requests.js';
import { zeroStats, type MutableStats, type RaftHostStats } from './stats.js';
import { WriteBatch } from './write-batch.js';
import { WritePipeline, type PendingWrite } from './write-pipeline.js';

/** Default RaftHostLimits.turnProposalBytesMax. */
const TURN_PROPOSAL_BYTES_MAX = 4 * 1024 * 1024;

/** A request for a group: refused (host closed, group not hosted here), or admitted to its replica. */
type Admission<Result> =
  | { readonly ok: true; readonly replica: GroupReplica<Result> }
  | { readonly ok: false; readonly refused: Failure };

export class RaftHost<Result = unknown> implements DrivableHost<Result> {
  private readonly hosted: Groups<Result>;
  /** Groups being bootstrapped or deleted: their messages are not adopted as a new replica meanwhile. */
  private readonly bootstrapping = new Map<GroupId, Promise<void>>();
  private readonly stats_: MutableStats = zeroStats();
  private readonly hostSeed: number;
  private readonly store: KvStore;
  private readonly requests: Requests;
  private readonly inbound: Inbound<Result>;
  private readonly outbox: Outbox<Result>;
  private readonly writes: WriteBatch<Result>;
  private readonly pipeline: WritePipeline<Result> | undefined;
  private readonly feedContext: FeedContext<Result>;
  private readonly applyContext: ApplyContext<Result>;
  private readonly advanceContext: AdvanceContext<Result>;

  private deferredTicks = 0;
  private turnInFlight: Promise<void> | undefined;
  private closed = false;
  private failed = false;
  private workListener: (() => void) | undefined;

  private constructor(private readonly options: RaftHostOptions<Result>) {
    const { store, stateMachine, transport, limits } = options;
    this.store = store;
    this.hostSeed = Math.floor(options.random() * 0x1_0000_0000);
    const readContexts = new ReadContexts(options.random);
    const stats = this.stats_;
    const groups = new Groups<Result>(options.nodeId, store);
    this.hosted = groups;
    this.requests = new Requests(options.now);
    this.inbound = new Inbound({
      groups,
      stats,
      inboundQueueMax: limits.inboundQueueMax,
      refuseEntries: options.refuseEntries ?? (() => undefined),
      wake: () => this.wake(),
    });
    this.outbox = new Outbox({
      transport,
      store,
      stats,
      snapshotSent: (replica, peer, ok) => this.snapshotSent(replica, peer, ok),
    });
    this.writes = new WriteBatch({ store, stateMachine, stats, timers: options.timers });
    this.pipeline =
      options.pipelineWrites === true
        ? new WritePipeline<Result>({
            store,
            stats,
            timers: options.timers,
            wake: () => this.wake(),
            fatal: (error) => this.reportFatal(error),
          })
        : undefined;
    this.feedContext = {
      inbound: this.inbound,
      requests: this.requests,
      pendingProposalsMax: limits.pendingProposalsMax,
      readContexts,
      budget: { proposalBytes: 0 },
    };
    this.applyContext = { stateMachine, stats, unflushed: this.writes.unflushed };
    this.advanceContext = { self: options.nodeId, groups, apply: this.applyContext };
  }

  /** Recovers every group found in the store and starts the transport with this host's handlers. */
  static async open<Result>(options: RaftHostOptions<Result>): Promise<RaftHost<Result>> {
    const host = new RaftHost<Result>(options);
    await recoverGroups(
      options.store,
      (group) => host.coreConfig(group),
      (group, init) => host.hosted.add(group, init),
    );
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
    const refusal = this.options.refuseProposals?.();
    if (refusal !== undefined) return Promise.resolve({ ok: false, code: 'OVERLOADED', message: refusal });
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
    const admission = this.admit(group);
    if (!admission.ok) return Promise.resolve(admission.refused);
    const { replica } = admission;
    return new Promise<ReadOutcome>((resolve) => {
      const request = this.requests.create<ReadOutcome>(options?.timeoutMs, 'read', resolve);
      replica.reads.push({ request, index: 0 });
      this.hosted.markDirty(replica);
      this.wake();
    });
  }

  leaderOf(group: GroupId): NodeId | null {
    return this.hosted.get(group)?.leader ?? null;
  }

  status(group: GroupId): GroupStatus | undefined {
    const replica = this.hosted.get(group);
    return replica === undefined ? undefined : { ...replica.core.status(), group };
  }

  groups(): readonly GroupId[] {
    return this.hosted.ids().sort((a, b) => a - b);
  }

  transferLeader(group: GroupId, to: NodeId): void {
    const replica = this.hosted.get(group);
    if (replica === undefined || this.closed) return;
    replica.transfers.push(to);
    this.hosted.markDirty(replica);
    this.wake();
  }

  /**
   * Fences `group`'s votes up to `term` (RawNode.fenceVotes) in its next turn, before it steps any
   * message: called at start-up, before the loop runs, with the highest term the peers hold.
   */
  fenceVotes(group: GroupId, term: Term): void {
    const replica = this.hosted.get(group);
    if (replica === undefined || this.closed) return;
    replica.voteFence = Math.max(replica.voteFence ?? 0, term);
    this.hosted.markDirty(replica);
    this.wake();
  }

  /**
   * Fences `group`'s votes to candidates holding the committed entry (index, term) (RawNode.fenceLog)
   * in its next turn, before it steps any message: called at start-up, before the loop runs, with the
   * newest entry the peers know committed.
   */
  fenceLog(group: GroupId, index: Index, term: Term): void {
    const replica = this.hosted.get(group);
    if (replica === undefined || this.closed) return;
    const held = replica.logFence;
    if (held === undefined || isLaterPosition({ index, term }, held)) replica.logFence = { index, term };
    this.hosted.markDirty(replica);
    this.wake();
  }

  /**
   * Holds (or releases) the votes of every replica this node hosts, and of those it adds meanwhile
   * (RawNode.holdVotes), from the next turn on: for a start whose fences could not be learned yet
   * because no peer answered.
   */
  holdVotes(held: boolean): void {
    if (this.closed) return;
    this.hosted.votesHeld = held;
    for (const replica of this.hosted.all()) {
      replica.holdVotes = held;
      this.hosted.markDirty(replica);
    }
    this.wake();
  }

  groupKv(group: GroupId): GroupKv {
    return this.hosted.get(group)?.kv ?? new StoreGroupKv(this.store, group);
  }

  // -------------------------------------------------------------------------------------------
  // DrivableHost

  async bootstrapGroup(group: GroupId, voters: readonly NodeId[]): Promise<void> {
    if (this.hosted.has(group)) return;
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
    else this.hosted.tick(1);
    this.requests.expire(this.options.now(), failure('TIMEOUT', 'request timed out'));
  }

  hasWork(): boolean {
    if (this.closed || this.failed) return false;
    return (
      this.hosted.anyDirty ||
      this.writes.hasWork ||
      this.inbound.hasUnknown ||
      this.deferredTicks > 0 ||
      this.pipeline?.hasCompleted === true
    );
  }

  async turn(): Promise<void> {
    if (this.closed || this.failed) return;
    // The driver's contract, not consensus state: a caller's error, reported to that caller.
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
    // Writes already handed over complete, and what waited for them is released.
    if (this.pipeline !== undefined && !this.failed) {
      await this.pipeline.idle();
      this.finishWrites();
    }
    // Answers held for a turn that will not come now: they are durable, so they still leave.
    this.outbox.flush();
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
    const replica = this.hosted.get(group);
    if (replica === undefined || replica.isLeader || this.closed || this.failed) return false;
    if (this.bootstrapping.has(group)) return false;
    this.hosted.remove(replica);
    replica.inboundSnapshot?.resolve(false);
    replica.inboundSnapshot = undefined;
    this.writes.forget(group, replica);
    const deleting = (async (): Promise<void> => {
      // Writes already handed over may carry the group's log: they land before the delete.
      await this.pipeline?.idle();
      await this.store.write(await deleteGroupOps(this.store, group), { sync: true });
      await this.options.stateMachine.restored(group, { index: 0, term: 0, conf: EMPTY_CONF });
    })();
    // Meanwhile messages for the group are not adopted as a new replica (see adopt).
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

  /** Proposals accepted and waiting for the next turn to feed them to their groups (a gauge). */
  proposalQueueDepth(): number {
    return this.requests.queuedProposals;
  }

  // -------------------------------------------------------------------------------------------
  // The turn.

  private async runTurn(): Promise<void> {
    this.stats_.turns += 1;
    // Finish: writes completed since the last turn tell their cores what is durable (pipelined).
    this.finishWrites();
    // Feed: input queued since the last turn goes into the cores, then each core hands over its Ready.
    this.inbound.adoptUnknownGroups((group, from) => this.adopt(group, from));
    this.hosted.reportUnreachable(this.options.transport.drainUnreachable());
    const work = this.hosted.takeDirty();
    // A received snapshot replaces a group's stored data, listed from the store: no write may be in
    // flight then, so such a turn waits for the pipeline and writes on its own (not pipelined).
    const pipelined =
      this.pipeline !== undefined && !work.some((replica) => replica.inboundSnapshot !== undefined);
    if (this.pipeline !== undefined && !pipelined) await this.pipeline.idle();
    this.feedContext.budget.proposalBytes =
      this.options.limits.turnProposalBytesMax ?? TURN_PROPOSAL_BYTES_MAX;
    for (const replica of work) feed(replica, this.feedContext);
    const ticked = this.applyDeferredTicks();
    for (const replica of ticked) feed(replica, this.feedContext);
    const stepped = ticked.length === 0 ? work : [...new Set([...work, ...ticked])];
    // Proposals past the budget wait for the next turn.
    for (const replica of stepped) if (replica.proposals.length > 0) this.hosted.markDirty(replica);
    const readys = collectReadys(stepped);
    // Send early: a leader's replication leaves before its own write (outbox.ts).
    this.outbox.sendEarly(readys);
    // Apply: committed entries are durable on a quorum already (the core never hands out one past its
    // own stable index), so they apply and answer now instead of waiting for this turn's fsync, and
    // their state-machine writes ride in that same write. A Ready that installs a snapshot applies
    // after it.
    await Promise.all(
      readys
        .filter((item) => !installsSnapshot(item))
        .map((item) => applyAndResolve(this.applyContext, item)),
    );
    if (pipelined && this.pipeline !== undefined) this.handOver(this.pipeline, readys);
    else await this.persistAndAdvance(readys);
    // A write with nothing to write completes at once: finish it in this turn.
    this.finishWrites();
    // With no turn to follow, nothing would carry the held messages: they leave now.
    if (!this.hasWork()) this.outbox.flush();
  }

  /**
   * Ticks that came while the previous turn ran, applied once this turn stepped the messages that
   * arrived meanwhile, and as one tick however many there were. A turn that stalled (a flood of large
   * appends, a slow fsync) must not count its own stall as silence: ticked first, a leader's
   * check-quorum would miss the answers waiting in its inbox and step down, and a follower would
   * campaign against a leader whose heartbeats are queued right there. Returns the groups the tick
   * gave work.
   */
  private applyDeferredTicks(): GroupReplica<Result>[] {
    if (this.deferredTicks === 0) return [];
    this.deferredTicks = 0;
    this.hosted.tick(1);
    return this.hosted.takeDirty();
  }

  /** The unpipelined end of a turn: one store write, awaited, then every Ready goes back to its core. */
  private async persistAndAdvance(readys: ReadyWork<Result>[]): Promise<void> {
    const installing = readys.filter(installsSnapshot);
    // Persist: one store write for the whole turn (write-batch.ts).
    const { installs, flushed } = await this.writes.persist(readys);
    for (const { replica, ready } of readys) this.hosted.observeSoftState(replica, ready);
    // Hold: what had to wait for the write now waits in the outbox for the next flush.
    this.outbox.hold(readys);
    // Install: received snapshots are in the store; their groups now stand at them.
    await this.writes.finishInstalls(installs);
    await Promise.all(installing.map((item) => applyAndResolve(this.applyContext, item)));
    // Advance: every Ready goes back to its core; a lone member applies what that committed (advance.ts).
    await advance(readys, this.advanceContext);
    this.compactFlushed(flushed);
  }

  /**
   * The pipelined end of a turn: every core accepts its Ready (the next one starts after it) and the
   * turn's ops join the pipeline's next write. What depends on that write waits for finishWrites.
   */
  private handOver(pipeline: WritePipeline<Result>, readys: ReadyWork<Result>[]): void {
    for (const { replica, ready } of readys) {
      replica.core.accept(ready);
      this.hosted.observeSoftState(replica, ready);
    }
    this.writes.collect(readys, pipeline.next());
    pipeline.submit();
  }

  /**
   * Completed writes, oldest first: their entries are stable in the cores (a leader may commit, a
   * lone member commits at once), the messages that waited for them are held for the next flush, and
   * groups whose applied index became durable may compact. Cores are between Readys here.
   */
  private finishWrites(): void {
    if (this.pipeline === undefined || !this.pipeline.hasCompleted) return;
    for (const write of this.pipeline.takeCompleted()) this.finishWrite(write);
  }

  private finishWrite(write: PendingWrite<Result>): void {
    const flushed = this.writes.finish(write);
    const current = write.readys.filter(({ replica }) => this.hosted.hosts(replica));
    for (const { replica, ready } of current) {
      replica.core.persisted(ready);
      if (replica.core.hasReady()) this.hosted.markDirty(replica);
    }
    this.outbox.hold(current);
    this.compactFlushed(flushed.filter((replica) => this.hosted.hosts(replica)));
  }

  private compactFlushed(flushed: readonly GroupReplica<Result>[]): void {
    for (const replica of flushed) {
      if (maybeCompact(replica, this.options, this.writes.compactionOps)) this.stats_.compactions += 1;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Transport inbound: only enqueue (inbound.ts).

  private handlers(): TransportHandlers {
    return {
      onMessages: (from, batch) => {
        if (!this.closed && !this.failed) this.inbound.onMessages(from, batch);
      },
      onSnapshot: (from, group, message, pairs) =>
        this.closed || this.failed
          ? Promise.resolve(false)
          : this.inbound.onSnapshot(from, group, message, pairs),
    };
  }

  /** A snapshot transfer ended: the core hears the outcome next turn, if the replica is still here. */
  private snapshotSent(replica: GroupReplica<Result>, peer: NodeId, ok: boolean): void {
    if (this.closed || this.failed || !this.hosted.hosts(replica)) return;
    replica.snapshotReports.push({ peer, ok });
    this.hosted.markDirty(replica);
    this.wake();
  }

  // -------------------------------------------------------------------------------------------
  // Replicas: creation (their initial state comes from recovery.ts).

  private async writeBootstrap(group: GroupId, voters: readonly NodeId[]): Promise<void> {
    const point = await writeBootstrapPoint(this.store, group, voters);
    if (this.hosted.has(group) || this.closed) return;
    this.hosted.add(group, bootstrappedGroup(this.coreConfig(group), group, point));
    this.wake();
  }

  /** The replica for input to a group this node does not have: created if the application accepts it. */
  private adopt(group: GroupId, from: NodeId): GroupReplica<Result> | undefined {
    const replica = this.hosted.get(group);
    const accept = this.options.acceptUnknownGroup?.(group, from) ?? false;
    if (replica !== undefined || !accept || this.bootstrapping.has(group)) return replica;
    return this.hosted.add(group, emptyGroup(this.coreConfig(group), group));
  }

  private coreConfig(group: GroupId): RaftConfig {
    return coreConfig(this.options, this.hostSeed, group);
  }

  // -------------------------------------------------------------------------------------------
  // Small helpers.

  private enqueueProposal<Outcome>(
    group: GroupId,
    timeoutMs: number | undefined,
    build: (request: Request<Outcome>) => Proposal<Result>,
  ): Promise<Outcome | Failure> {
    const admission = this.admit(group);
    if (!admission.ok) return Promise.resolve(admission.refused);
    if (this.requests.queuedProposals >= this.options.limits.proposalQueueMax) {
      return Promise.resolve(failure('OVERLOADED', 'proposal queue full'));
    }
    const { replica } = admission;
    return new Promise<Outcome | Failure>((resolve) => {
      const request = this.requests.create<Outcome>(timeoutMs, 'queued', resolve);
      this.requests.queuedProposals += 1;
      this.stats_.proposals += 1;
      replica.proposals.push(build(request));
      this.hosted.markDirty(replica);
      this.wake();
    });
  }

  private admit(group: GroupId): Admission<Result> {
    if (this.closed || this.failed) return { ok: false, refused: failure('SHUTTING_DOWN', 'host is closed') };
    const replica = this.hosted.get(group);
    if (replica === undefined) {
      return { ok: false, refused: failure('NO_GROUP', `group ${group} is not hosted here`) };
    }
    return { ok: true, replica };
  }

  private wake(): void {
    this.workListener?.();
  }

  /** Shutdown or failure: every waiter gets SHUTTING_DOWN, every queued snapshot `false`. */
  private settleEverything(): void {
    this.requests.settleAll(failure('SHUTTING_DOWN', 'host is closing'));
    for (const replica of this.hosted.all()) {
      replica.inboundSnapshot?.resolve(false);
      replica.inboundSnapshot = undefined;
    }
    this.inbound.dropUnknown();
  }
}
