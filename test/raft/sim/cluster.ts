// The simulated cluster: real hosts (one per node, several groups each) over simulated disks and a
// simulated network. It boots, crashes and restarts nodes, issues proposals and reads, and after each
// step feeds what it sees (roles, persisted logs, applied records, outcomes) to the checkers.

import type { DrivableHost, RaftHostOptions, ReadOutcome } from '../../../raft/api.js';
import type { ConfChange, ConfState, GroupId, NodeId, Term } from '../../../raft/core/types.js';
import type { SafetyChecker, LogView } from './checkers.js';
import { DiskLogCache } from './disk-log-view.js';
import type { Prng } from './prng.js';
import {
  RecordingStateMachine,
  encodeProposal,
  readRecords,
  type AppliedRecord,
  type RecordEvent,
  type RecordResult,
} from './recording-state-machine.js';
import type { SimClock } from './sim-clock.js';
import type { SimConfig } from './sim-config.js';
import type { SimNetwork } from './sim-network.js';
import { SimDisk } from './sim-store.js';

export type SimHost = DrivableHost<RecordResult>;
/** How the cluster opens a host: `RaftHost.open` in the simulation tests. */
export type OpenHost = (options: RaftHostOptions<RecordResult>) => Promise<SimHost>;

export interface GroupPlacement {
  readonly group: GroupId;
  readonly voters: readonly NodeId[];
}

export interface ClusterStats {
  boots: number;
  crashes: number;
  turns: number;
  proposals: number;
  acknowledged: number;
  /** Failed proposals and reads by failure code. */
  failures: Record<string, number>;
  reads: number;
  readsServed: number;
  transfers: number;
  /** Membership changes asked for, and those that committed. */
  reconfigurations: number;
  reconfigured: number;
  /** Outcomes that arrived after their node crashed (a dead host kept running). */
  lateOutcomes: number;
}

export class SimNode {
  state: 'down' | 'booting' | 'up' = 'down';
  /** Bumped at every boot and crash; callbacks from an older incarnation are ignored. */
  incarnation = 0;
  host: SimHost | undefined;
  turning = false;
  /** Whether this incarnation's host has a replica of `group` (initial placement, or added since). */
  hosts(group: GroupId): boolean {
    return this.host === undefined ? false : this.host.status(group) !== undefined;
  }

  /** Groups with a replica on this incarnation's host. */
  hostedGroups(): readonly GroupId[] {
    return this.host?.groups() ?? [];
  }

  /** Groups whose state-machine space a snapshot replaced: their records are re-read at step end. */
  readonly staleGroups = new Set<GroupId>();
  readonly logs: DiskLogCache;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    readonly groups: readonly GroupId[],
  ) {
    this.logs = new DiskLogCache(disk);
  }
}

export class SimCluster {
  readonly nodes: readonly SimNode[];
  readonly placements: readonly GroupPlacement[];
  readonly stats: ClusterStats = {
    boots: 0,
    crashes: 0,
    turns: 0,
    proposals: 0,
    acknowledged: 0,
    failures: {},
    reads: 0,
    readsServed: 0,
    transfers: 0,
    reconfigurations: 0,
    reconfigured: 0,
    lateOutcomes: 0,
  };
  private readonly peers: ReadonlyMap<NodeId, string>;
  /** Per group, the membership of the highest-term leader seen (the placement until one is seen). */
  private readonly confs = new Map<GroupId, { readonly term: Term; readonly conf: ConfState }>();
  private nextProposalId = 1;

  constructor(
    private readonly config: SimConfig,
    private readonly openHost: OpenHost,
    private readonly clock: SimClock,
    private readonly network: SimNetwork,
    private readonly checker: SafetyChecker,
    private readonly prng: Prng,
  ) {
    const ids = Array.from({ length: config.nodeCount }, (_, i) => `n${i + 1}`);
    this.peers = new Map(ids.map((id) => [id, `sim://${id}`]));
    this.placements = placeGroups(ids, config, prng);
    this.nodes = ids.map((id) => {
      const groups = this.placements.filter((p) => p.voters.includes(id)).map((p) => p.group);
      return new SimNode(id, new SimDisk({ lieAboutFsync: config.lieAboutFsync }), groups);
    });
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  upNodes(): SimNode[] {
    return this.nodes.filter((node) => node.state === 'up');
  }

  // ------------------------------------------------------------------------------------------
  // Life cycle.

  /** Start the node's next incarnation. Booting waits on simulated fsyncs, so it runs in the background. */
  boot(node: SimNode): void {
    if (node.state !== 'down') throw new Error(`boot of ${node.id}, which is ${node.state}`);
    node.state = 'booting';
    node.incarnation += 1;
    this.stats.boots += 1;
    const incarnation = node.incarnation;
    this.bootSequence(node, incarnation).catch((error: unknown) => {
      if (node.incarnation === incarnation)
        this.checker.fail('host-error', `${node.id} failed to boot: ${show(error)}`);
    });
  }

  /** Power loss: the host is dropped without closing, its disk keeps only durable writes. */
  crash(node: SimNode): void {
    if (node.state === 'down') throw new Error(`crash of ${node.id}, which is down`);
    node.state = 'down';
    node.incarnation += 1;
    node.host = undefined;
    node.turning = false;
    node.staleGroups.clear();
    node.disk.crash();
    this.network.disconnect(node.id);
    for (const { group } of this.placements) this.checker.forgetReplica(node.id, group);
    this.stats.crashes += 1;
  }

  private async bootSequence(node: SimNode, incarnation: number): Promise<void> {
    const transport = this.network.connect(node.id);
    transport.setPeers(this.peers);
    const stateMachine = new RecordingStateMachine((event) => this.onRecordEvent(node, incarnation, event));
    const host = await this.openHost(this.hostOptions(node, incarnation, transport, stateMachine));
    for (const group of node.groups) {
      if (node.incarnation !== incarnation) return;
      await host.bootstrapGroup(group, this.votersOf(group));
    }
    // Every group on disk, the ones this node joined after the placement included.
    for (const group of host.groups()) {
      if (node.incarnation !== incarnation) return;
      this.checker.observeLoaded(node.id, group, await readRecords(host.groupKv(group)));
    }
    if (node.incarnation !== incarnation) return;
    node.host = host;
    node.state = 'up';
  }

  private hostOptions(
    node: SimNode,
    incarnation: number,
    transport: RaftHostOptions<RecordResult>['transport'],
    stateMachine: RecordingStateMachine,
  ): RaftHostOptions<RecordResult> {
    const random = this.prng.fork();
    return {
      nodeId: node.id,
      store: node.disk.open(),
      transport,
      stateMachine,
      random: () => random.next(),
      now: this.clock.now,
      electionTicks: this.config.electionTicks,
      heartbeatTicks: this.config.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      limits: this.config.limits,
      pipelineWrites: this.config.pipelineWrites,
      onFatal: (error) => this.onFatal(node, incarnation, error),
      // With membership changes on, a node added to a group creates its replica when the leader calls.
      acceptUnknownGroup: () => this.config.weights.reconfigure > 0,
    };
  }

  /** Production exits the process on a fatal error: record it as a violation and crash the node. */
  private onFatal(node: SimNode, incarnation: number, error: Error): void {
    if (node.incarnation !== incarnation) return;
    this.checker.fail('host-error', `${node.id} reported a fatal error: ${show(error)}`);
    this.crash(node);
  }

  private onRecordEvent(node: SimNode, incarnation: number, event: RecordEvent): void {
    if (node.incarnation !== incarnation) {
      this.checker.fail('host-error', `${node.id} applied entries after it crashed`);
      return;
    }
    if (event.kind === 'applied') {
      this.checker.observeApplied(node.id, event.group, event.firstSeq, event.records);
    } else {
      this.checker.forgetReplica(node.id, event.group);
      node.staleGroups.add(event.group);
    }
  }

  /** The group's current voters and learners, as its highest-term leader seen so far applied them. */
  membersOf(group: GroupId): readonly NodeId[] {
    const conf = this.confOf(group);
    return [...conf.voters, ...conf.learners].sort();
  }

  confOf(group: GroupId): ConfState {
    return this.confs.get(group)?.conf ?? { voters: this.votersOf(group), learners: [] };
  }

  /** The initial voters of `group` (its placement). */
  votersOf(group: GroupId): readonly NodeId[] {
    const placement = this.placements.find((p) => p.group === group);
    if (placement === undefined) throw new Error(`no group ${group}`);
    return placement.voters;
  }

  // ------------------------------------------------------------------------------------------
  // Driving a host.

  tick(node: SimNode): void {
    requireHost(node).tick();
  }

  /** Starts one turn; it may wait on fsyncs the scheduler has yet to complete. */
  startTurn(node: SimNode): void {
    const host = requireHost(node);
    const incarnation = node.incarnation;
    node.turning = true;
    this.stats.turns += 1;
    host.turn().then(
      () => {
        if (node.incarnation === incarnation) node.turning = false;
      },
      (error: unknown) => {
        if (node.incarnation === incarnation)
          this.checker.fail('host-error', `${node.id} turn failed: ${show(error)}`);
      },
    );
  }

  propose(node: SimNode, group: GroupId): void {
    const host = requireHost(node);
    const proposalId = `p${this.nextProposalId++}`;
    const incarnation = node.incarnation;
    this.stats.proposals += 1;
    host.propose(group, encodeProposal(proposalId), { timeoutMs: this.config.proposeTimeoutMs }).then(
      (outcome) => {
        if (node.incarnation !== incarnation) {
          this.stats.lateOutcomes += 1;
          return;
        }
        if (outcome.ok) this.stats.acknowledged += 1;
        else this.countFailure(outcome.code);
        this.checker.observeOutcome(node.id, group, proposalId, outcome);
      },
      (error: unknown) => this.checker.fail('host-error', `${node.id} propose rejected: ${show(error)}`),
    );
  }

  read(node: SimNode, group: GroupId): void {
    const host = requireHost(node);
    const barrier = this.checker.readBarrier(group);
    const incarnation = node.incarnation;
    this.stats.reads += 1;
    host.readIndex(group, { timeoutMs: this.config.proposeTimeoutMs }).then(
      (outcome: ReadOutcome) => {
        if (node.incarnation !== incarnation) return;
        if (!outcome.ok) {
          this.countFailure(outcome.code);
          return;
        }
        this.stats.readsServed += 1;
        this.checker.checkRead(node.id, group, barrier, outcome.index);
      },
      (error: unknown) => this.checker.fail('host-error', `${node.id} readIndex rejected: ${show(error)}`),
    );
  }

  /** Asks `node` to hand `group` to `to`; a node that does not lead the group ignores it. */
  transferLeader(node: SimNode, group: GroupId, to: NodeId): void {
    const host = requireHost(node);
    if (!node.hosts(group)) return;
    this.stats.transfers += 1;
    host.transferLeader(group, to);
  }

  /** Asks `node` to change `group`'s membership; only a leader accepts, one change at a time. */
  reconfigure(node: SimNode, group: GroupId, change: ConfChange): void {
    const host = requireHost(node);
    const incarnation = node.incarnation;
    this.stats.reconfigurations += 1;
    host.changeMembership(group, change, { timeoutMs: this.config.proposeTimeoutMs }).then(
      (outcome) => {
        if (node.incarnation !== incarnation) return;
        if (outcome.ok) this.stats.reconfigured += 1;
        else this.countFailure(`conf:${outcome.code}`);
      },
      (error: unknown) =>
        this.checker.fail('host-error', `${node.id} changeMembership rejected: ${show(error)}`),
    );
  }

  private countFailure(code: string): void {
    this.stats.failures[code] = (this.stats.failures[code] ?? 0) + 1;
  }

  /** An up node that believes it leads `group` (a client following leader hints), if any. */
  believedLeader(group: GroupId): SimNode | undefined {
    const leaders = this.upNodes().filter((node) => node.host?.status(group)?.role === 'leader');
    return leaders.length === 0 ? undefined : this.prng.pick(leaders);
  }

  // ------------------------------------------------------------------------------------------
  // Observation, after every step.

  async observe(): Promise<void> {
    for (const node of this.upNodes()) await this.reloadStaleGroups(node);
    for (const node of this.upNodes()) {
      for (const group of node.hostedGroups()) {
        const status = node.host?.status(group);
        if (status === undefined) continue;
        this.checker.observeStatus(node.id, status);
        const known = this.confs.get(group);
        if (status.role === 'leader' && (known === undefined || status.term >= known.term)) {
          this.confs.set(group, { term: status.term, conf: status.conf });
        }
      }
    }
    this.checker.endStep((nodeId, group) => this.logOf(this.node(nodeId), group));
    // Every node's disk, whether or not it is (still) a member: a removed replica's log must match too.
    for (const { group } of this.placements) {
      const logs = new Map<NodeId, LogView>();
      for (const node of this.nodes) {
        const log = this.logOf(node, group);
        if (log !== undefined && log.lastIndex > 0) logs.set(node.id, log);
      }
      this.checker.checkLogMatching(group, logs);
    }
  }

  private async reloadStaleGroups(node: SimNode): Promise<void> {
    const host = node.host;
    if (host === undefined) return;
    for (const group of [...node.staleGroups]) {
      node.staleGroups.delete(group);
      try {
        this.checker.observeLoaded(node.id, group, await readRecords(host.groupKv(group)));
      } catch (error) {
        this.checker.fail(
          'applied-prefix',
          `${node.id} holds unreadable records of group ${group}: ${show(error)}`,
        );
      }
    }
  }

  /** Every node's persisted log counts, down nodes' included: their disks are what they restart from. */
  private logOf(node: SimNode, group: GroupId): LogView | undefined {
    try {
      return node.logs.logOf(group);
    } catch (error) {
      this.checker.fail('host-error', `${node.id} holds an unreadable log of group ${group}: ${show(error)}`);
      return undefined;
    }
  }

  /** The applied records every up member of `group` holds, read back from their stores. */
  async recordsOf(group: GroupId): Promise<Map<NodeId, readonly AppliedRecord[]>> {
    const records = new Map<NodeId, readonly AppliedRecord[]>();
    const members = this.membersOf(group);
    for (const node of this.upNodes()) {
      if (node.host === undefined || !members.includes(node.id)) continue;
      records.set(node.id, await readRecords(node.host.groupKv(group)));
    }
    return records;
  }
}

const requireHost = (node: SimNode): SimHost => {
  if (node.state !== 'up' || node.host === undefined) throw new Error(`${node.id} is not up`);
  return node.host;
};

/** Each group gets `replicasPerGroup` distinct voters, chosen by the seed. */
const placeGroups = (ids: readonly NodeId[], config: SimConfig, prng: Prng): GroupPlacement[] =>
  Array.from({ length: config.groupCount }, (_, group) => {
    const pool = [...ids];
    const voters: NodeId[] = [];
    while (voters.length < Math.min(config.replicasPerGroup, ids.length)) {
      voters.push(...pool.splice(prng.int(pool.length), 1));
    }
    return { group, voters: voters.sort() };
  });

const show = (error: unknown): string =>
  error instanceof Error ? (error.stack ?? error.message) : String(error);
