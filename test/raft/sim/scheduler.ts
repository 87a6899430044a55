// The scheduler: at each step the seed picks one action among those possible now (tick or turn a node,
// deliver or mangle a frame, complete an fsync, crash or restart a node, cut or heal links, propose,
// read), weighted by the run's configuration. Actions only start work; the simulation then lets every
// promise settle before the next step, so the same seed always yields the same sequence.

import { MessageType, type ConfChange, type GroupId, type NodeId } from '../../../raft/core/types.js';
import type { SimCluster, SimNode } from './cluster.js';
import type { Prng } from './prng.js';
import type { SimClock } from './sim-clock.js';
import type { ActionWeights, SimConfig } from './sim-config.js';
import type { Frame, SimNetwork } from './sim-network.js';

export type Action =
  | { readonly kind: 'tick' | 'turn' | 'fsync' | 'crash' | 'restart'; readonly node: NodeId }
  | { readonly kind: 'deliver' | 'drop' | 'duplicate'; readonly frameId: number }
  | { readonly kind: 'delay'; readonly frameId: number; readonly delayMs: number }
  | {
      readonly kind: 'partition';
      readonly description: string;
      readonly links: readonly (readonly [NodeId, NodeId])[];
    }
  | { readonly kind: 'heal' }
  | { readonly kind: 'propose' | 'read'; readonly node: NodeId; readonly group: GroupId }
  | { readonly kind: 'transfer'; readonly node: NodeId; readonly group: GroupId; readonly to: NodeId }
  | {
      readonly kind: 'reconfigure';
      readonly node: NodeId;
      readonly group: GroupId;
      readonly change: ConfChange;
    };

type ActionKind = keyof ActionWeights;

export class Scheduler {
  constructor(
    private readonly config: SimConfig,
    private readonly cluster: SimCluster,
    private readonly network: SimNetwork,
    private readonly clock: SimClock,
    private readonly prng: Prng,
  ) {}

  /** Picks the next action among those enabled now; undefined if nothing at all can happen. */
  choose(): Action | undefined {
    const enabled = (Object.keys(this.config.weights) as ActionKind[]).filter(
      (kind) => this.config.weights[kind] > 0 && this.isEnabled(kind),
    );
    const total = enabled.reduce((sum, kind) => sum + this.config.weights[kind], 0);
    let point = this.prng.next() * total;
    for (const kind of enabled) {
      point -= this.config.weights[kind];
      if (point < 0) return this.detail(kind);
    }
    const last = enabled.at(-1);
    return last === undefined ? undefined : this.detail(last);
  }

  /** Starts the action. Anything it sets in motion settles before the next step. */
  perform(action: Action): void {
    switch (action.kind) {
      case 'tick':
        // Nodes tick in turn, so on average each ticks once per tickMs of simulated time.
        this.clock.advance(this.config.tickMs / this.config.nodeCount);
        this.cluster.tick(this.cluster.node(action.node));
        return;
      case 'turn':
        this.cluster.startTurn(this.cluster.node(action.node));
        return;
      case 'fsync':
        this.cluster.node(action.node).disk.completeFsync();
        return;
      case 'crash':
        this.cluster.crash(this.cluster.node(action.node));
        return;
      case 'restart':
        this.cluster.boot(this.cluster.node(action.node));
        return;
      case 'deliver':
        this.network.deliver(action.frameId);
        return;
      case 'drop':
        this.network.drop(action.frameId);
        return;
      case 'duplicate':
        this.network.duplicate(action.frameId);
        return;
      case 'delay':
        this.network.delay(action.frameId, action.delayMs);
        return;
      case 'partition':
        for (const [from, to] of action.links) this.network.cut(from, to);
        return;
      case 'heal':
        this.network.heal();
        return;
      case 'propose':
        this.cluster.propose(this.cluster.node(action.node), action.group);
        return;
      case 'read':
        this.cluster.read(this.cluster.node(action.node), action.group);
        return;
      case 'transfer':
        this.cluster.transferLeader(this.cluster.node(action.node), action.group, action.to);
        return;
      case 'reconfigure':
        this.cluster.reconfigure(this.cluster.node(action.node), action.group, action.change);
        return;
    }
  }

  private isEnabled(kind: ActionKind): boolean {
    switch (kind) {
      case 'tick':
      case 'propose':
      case 'read':
        return this.cluster.upNodes().length > 0;
      case 'turn':
        return this.turnable().length > 0;
      case 'fsync':
        return this.syncable().length > 0;
      case 'deliver':
        return this.network.deliverable().length > 0;
      case 'drop':
      case 'duplicate':
      case 'delay':
        return this.network.inFlight().length > 0;
      case 'crash':
        return this.downCount() < this.config.downNodesMax && this.crashable().length > 0;
      case 'restart':
        return this.downCount() > 0;
      case 'partition':
        return this.config.nodeCount > 1;
      case 'heal':
        return this.network.cutLinkCount > 0;
      case 'transfer':
      case 'reconfigure':
        return this.cluster.upNodes().length > 0;
    }
  }

  private detail(kind: ActionKind): Action {
    switch (kind) {
      case 'tick':
        return { kind, node: this.prng.pick(this.cluster.upNodes()).id };
      case 'turn':
        return { kind, node: this.prng.pick(this.turnable()).id };
      case 'fsync':
        return { kind, node: this.prng.pick(this.syncable()).id };
      case 'crash':
        return { kind, node: this.prng.pick(this.crashable()).id };
      case 'restart':
        return { kind, node: this.prng.pick(this.cluster.nodes.filter((node) => node.state === 'down')).id };
      case 'deliver':
        return { kind, frameId: this.prng.pick(this.network.deliverable()).id };
      case 'drop':
      case 'duplicate':
        return { kind, frameId: this.prng.pick(this.network.inFlight()).id };
      case 'delay':
        return {
          kind,
          frameId: this.prng.pick(this.network.inFlight()).id,
          delayMs: this.prng.between(this.config.tickMs, this.config.tickMs * this.config.electionTicks),
        };
      case 'partition':
        return this.partition();
      case 'heal':
        return { kind };
      case 'propose':
      case 'read':
        return this.request(kind);
      case 'transfer':
        return this.transfer();
      case 'reconfigure':
        return this.reconfigure();
    }
  }

  /**
   * A membership change asked of the group's leader (as it sees the membership): promote a learner,
   * shrink a group grown past its size, or add a learner (any node not a voter, a removed one included).
   * Removing the leader itself is allowed: it must hand over and step down.
   */
  private reconfigure(): Action {
    const { group } = this.prng.pick(this.cluster.placements);
    const leader = this.cluster.believedLeader(group);
    const node = leader ?? this.prng.pick(this.cluster.upNodes());
    const conf = node.host?.status(group)?.conf ?? this.cluster.confOf(group);
    const outsiders = this.cluster.nodes.map((n) => n.id).filter((id) => !conf.voters.includes(id));
    let change: ConfChange;
    if (conf.learners.length > 0) change = { type: 'promote', node: this.prng.pick(conf.learners) };
    else if (conf.voters.length <= this.config.replicasPerGroup && outsiders.length > 0)
      change = { type: 'add_learner', node: this.prng.pick(outsiders) };
    else change = { type: 'remove', node: this.prng.pick(conf.voters) };
    return { kind: 'reconfigure', node: node.id, group, change };
  }

  /** A transfer asked of a node that believes it leads (or of any replica, which ignores it). */
  private transfer(): Action {
    const { group } = this.prng.pick(this.cluster.placements);
    const voters = this.cluster.confOf(group).voters;
    const leader = this.cluster.believedLeader(group);
    const replicas = this.cluster.upNodes().filter((node) => node.hosts(group));
    const node =
      leader ?? (replicas.length > 0 ? this.prng.pick(replicas) : this.prng.pick(this.cluster.upNodes()));
    const others = voters.filter((id) => id !== node.id);
    return {
      kind: 'transfer',
      node: node.id,
      group,
      to: others.length > 0 ? this.prng.pick(others) : node.id,
    };
  }

  /** A client request, sent to a node that believes it leads the group most of the time. */
  private request(kind: 'propose' | 'read'): Action {
    const group = this.prng.pick(this.cluster.placements).group;
    const replicas = this.cluster.upNodes().filter((node) => node.hosts(group));
    const leader = this.cluster.believedLeader(group);
    const target = leader !== undefined && this.prng.chance(0.8) ? leader : undefined;
    const node =
      target ?? (replicas.length > 0 ? this.prng.pick(replicas) : this.prng.pick(this.cluster.upNodes()));
    return { kind, node: node.id, group };
  }

  private partition(): Action {
    const ids = this.cluster.nodes.map((node) => node.id);
    const node = this.prng.pick(ids);
    const others = ids.filter((id) => id !== node);
    switch (this.prng.int(4)) {
      case 0:
        return {
          kind: 'partition',
          description: `isolate ${node}`,
          links: others.flatMap((other) => [[node, other] as const, [other, node] as const]),
        };
      case 1: {
        const side = ids.filter(() => this.prng.chance(0.5));
        const rest = ids.filter((id) => !side.includes(id));
        return {
          kind: 'partition',
          description: `split [${side.join(',')}] | [${rest.join(',')}]`,
          links: side.flatMap((a) => rest.flatMap((b) => [[a, b] as const, [b, a] as const])),
        };
      }
      case 2:
        return {
          kind: 'partition',
          description: `${node} cannot send to anyone`,
          links: others.map((other) => [node, other] as const),
        };
      default: {
        const other = this.prng.pick(others);
        return { kind: 'partition', description: `${node} cannot reach ${other}`, links: [[node, other]] };
      }
    }
  }

  private turnable(): SimNode[] {
    return this.cluster.upNodes().filter((node) => !node.turning && node.host?.hasWork() === true);
  }

  private syncable(): SimNode[] {
    return this.cluster.nodes.filter((node) => node.disk.pendingWriteCount > 0);
  }

  private crashable(): SimNode[] {
    return this.cluster.nodes.filter((node) => node.state !== 'down');
  }

  private downCount(): number {
    return this.cluster.nodes.filter((node) => node.state === 'down').length;
  }
}

const MESSAGE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(MessageType).map(([name, type]) => [type, name]),
);

/** What a frame carries, for traces: `g0:App(5+2)` is an App of group 0 after index 5 with 2 entries. */
export const describeFrame = (frame: Frame): string => {
  const route = `${frame.from}->${frame.to}`;
  const { payload } = frame;
  if (payload.kind === 'snapshot')
    return `${route} snapshot of g${payload.group} at ${payload.message.snapshot?.index}`;
  if (payload.kind === 'snapshot-reply') return `${route} snapshot reply ${payload.ok}`;
  const shown = payload.batch.slice(0, 4).map(({ group, message }) => {
    const name = MESSAGE_NAMES[message.type] ?? String(message.type);
    const entries = message.entries === undefined ? '' : `(${message.index}+${message.entries.length})`;
    return `g${group}:${name}${entries}@t${message.term}`;
  });
  const more = payload.batch.length > shown.length ? ` +${payload.batch.length - shown.length}` : '';
  return `${route} ${shown.join(' ')}${more}`;
};

export const describeAction = (action: Action, network: SimNetwork): string => {
  switch (action.kind) {
    case 'tick':
    case 'turn':
    case 'fsync':
    case 'crash':
    case 'restart':
      return `${action.kind} ${action.node}`;
    case 'deliver':
    case 'drop':
    case 'duplicate': {
      const frame = network.frame(action.frameId);
      return `${action.kind} frame ${action.frameId} ${frame === undefined ? '' : describeFrame(frame)}`;
    }
    case 'delay':
      return `delay frame ${action.frameId} by ${action.delayMs}ms`;
    case 'partition':
      return `partition: ${action.description}`;
    case 'heal':
      return 'heal all links';
    case 'propose':
    case 'read':
      return `${action.kind} group ${action.group} on ${action.node}`;
    case 'transfer':
      return `transfer leadership of group ${action.group} from ${action.node} to ${action.to}`;
    case 'reconfigure':
      return `${action.change.type} ${action.change.node} in group ${action.group} on ${action.node}`;
  }
};
