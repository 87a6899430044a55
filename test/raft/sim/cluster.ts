// The simulated cluster: real hosts (one per node, several groups each) over simulated disks and a
// simulated network. It boots, crashes and restarts nodes, issues proposals and reads, and after each
// step feeds what it sees (roles, persisted logs, applied records, outcomes) to the checkers.

import type { DrivableHost, RaftHostOptions, ReadOutcome } from '../../../raft/api.js';
import type { GroupId, NodeId } from '../../../raft/core/types.js';
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
  /** Outcomes that arrived after their node crashed (a dead host kept running). */
  lateOutcomes: number;
}

export class SimNode {
  state: 'down' | 'booting' | 'up' = 'down';
  /** Bumped at every boot and crash; callbacks from an older incarnation are ignored. */
  incarnation = 0;
  host: SimHost | undefined;
  turning = false;
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
    lateOutcomes: 0,
  };
  private readonly peers: ReadonlyMap<NodeId, string>;
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
    for (const group of node.groups) this.checker.forgetReplica(node.id, group);
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
    for (const group of node.groups) {
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
      onFatal: (error) => this.onFatal(node, incarnation, error),
      acceptUnknownGroup: () => false,
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
      for (const group of node.groups) {
        const status = node.host?.status(group);
        if (status !== undefined) this.checker.observeStatus(node.id, status);
      }
    }
    this.checker.endStep((nodeId, group) => this.logOf(this.node(nodeId), group));
    for (const { group, voters } of this.placements) {
      const logs = new Map<NodeId, LogView>();
      for (const voter of voters) {
        const log = this.logOf(this.node(voter), group);
        if (log !== undefined) logs.set(voter, log);
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

  /** The applied records every up replica of `group` holds, read back from their stores. */
  async recordsOf(group: GroupId): Promise<Map<NodeId, readonly AppliedRecord[]>> {
    const records = new Map<NodeId, readonly AppliedRecord[]>();
    for (const node of this.upNodes()) {
      if (node.host === undefined || !node.groups.includes(group)) continue;
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
