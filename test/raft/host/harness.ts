// Test harness for the host: an in-memory Transport network that can cut links, a recording state
// machine that stores every applied entry in its group space, and a cluster of hosts driven by hand
// (tick and turn, no timers) so multi-node scenarios are deterministic and fast.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type {
  AppliedEntry,
  GroupKv,
  GroupMessage,
  GroupWriteBatch,
  KvStore,
  RaftHostLimits,
  SnapshotChunk,
  StateMachine,
  Transport,
  TransportHandlers,
} from '../../../raft/api.js';
import type { GroupId, Message, NodeId, SnapshotMeta } from '../../../raft/core/types.js';
import { RaftHost } from '../../../raft/host/index.js';
import { MemoryStore } from '../storage/memory-store.js';

// ---------------------------------------------------------------------------------------------
// Network

export class MemoryNetwork {
  private readonly transports = new Map<NodeId, MemoryTransport>();
  private readonly cutLinks = new Set<string>();
  /** Every frame sent while set (tests that look at how messages were batched). */
  recorded: { from: NodeId; to: NodeId; batch: readonly GroupMessage[] }[] | undefined;

  transport(id: NodeId): MemoryTransport {
    const transport = new MemoryTransport(id, this);
    this.transports.set(id, transport);
    return transport;
  }

  /** Cuts every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of this.transports.keys()) {
      if (other === id) continue;
      this.cutLinks.add(`${id}>${other}`);
      this.cutLinks.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cutLinks.clear();
  }

  /** A crashed node: its transport stops delivering (a reopened host gets a new transport). */
  detach(id: NodeId): void {
    const transport = this.transports.get(id);
    if (transport !== undefined) transport.handlers = undefined;
  }

  reachable(from: NodeId, to: NodeId): boolean {
    return !this.cutLinks.has(`${from}>${to}`) && this.transports.get(to)?.handlers !== undefined;
  }

  handlersOf(id: NodeId): TransportHandlers | undefined {
    return this.transports.get(id)?.handlers;
  }
}

export class MemoryTransport implements Transport {
  handlers: TransportHandlers | undefined;
  private unreachable = new Set<NodeId>();
  framesSent = 0;

  constructor(
    readonly id: NodeId,
    private readonly network: MemoryNetwork,
  ) {}

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
  }

  setPeers(): void {}

  send(to: NodeId, batch: readonly GroupMessage[]): void {
    this.framesSent += 1;
    this.network.recorded?.push({ from: this.id, to, batch });
    if (!this.network.reachable(this.id, to)) {
      this.unreachable.add(to);
      return;
    }
    // Delivery only enqueues on the receiver, so doing it synchronously is safe.
    this.network.handlersOf(to)?.onMessages(this.id, batch);
  }

  async sendSnapshot(to: NodeId, chunks: AsyncIterable<SnapshotChunk>): Promise<boolean> {
    const pairs: (readonly [Uint8Array, Uint8Array])[] = [];
    let message: Message | undefined;
    let group: GroupId | undefined;
    let expectedSeq = 0;
    for await (const chunk of chunks) {
      if (chunk.seq !== expectedSeq) throw new Error('chunks out of order');
      expectedSeq += 1;
      message = chunk.message;
      group = chunk.group;
      for (const pair of chunk.pairs) pairs.push(pair);
    }
    const handlers = this.network.handlersOf(to);
    if (message === undefined || group === undefined || handlers === undefined) return false;
    if (!this.network.reachable(this.id, to)) return false;
    return handlers.onSnapshot(this.id, group, message, pairs);
  }

  drainUnreachable(): readonly NodeId[] {
    const peers = [...this.unreachable];
    this.unreachable.clear();
    return peers;
  }

  async stop(): Promise<void> {
    this.handlers = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// State machine

const text = new TextEncoder();
const untext = new TextDecoder();

export const bytes = (value: string): Uint8Array => text.encode(value);

const indexKey = (index: number): Uint8Array => {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setBigUint64(0, BigInt(index));
  return key;
};

/** Stores each applied entry under its index; the result names the entry, so callers can check it. */
export class RecordingStateMachine implements StateMachine<string> {
  readonly persistedCalls: [GroupId, number][] = [];
  readonly restoredCalls: [GroupId, SnapshotMeta][] = [];
  applyCalls = 0;

  apply(group: GroupId, entries: readonly AppliedEntry[], batch: GroupWriteBatch, _kv: GroupKv): string[] {
    this.applyCalls += 1;
    return entries.map((entry) => {
      batch.put(indexKey(entry.index), entry.data);
      return `${group}:${entry.index}:${untext.decode(entry.data)}`;
    });
  }

  persisted(group: GroupId, appliedIndex: number): void {
    this.persistedCalls.push([group, appliedIndex]);
  }

  restored(group: GroupId, meta: SnapshotMeta): void {
    this.restoredCalls.push([group, meta]);
  }
}

/** Every entry durably applied in `group` on that node, as text in index order. */
export const appliedData = async (kv: GroupKv): Promise<string[]> => {
  const values: string[] = [];
  for await (const [, value] of kv.iterate({})) values.push(untext.decode(value));
  return values;
};

// ---------------------------------------------------------------------------------------------
// Hosts

export const testLimits = (overrides: Partial<RaftHostLimits> = {}): RaftHostLimits => ({
  proposalQueueMax: 10_000,
  pendingProposalsMax: 10_000,
  inboundQueueMax: 100_000,
  inflightBytesMax: 0,
  inflightMsgsMax: 64,
  msgBytesMax: 1 << 20,
  uncommittedBytesMax: 0,
  logRetainEntries: 1_000,
  ...overrides,
});

/** A seeded stream for the hosts' options.random (tests never use Math.random). */
export const seeded = (seed: number): (() => number) => {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 0x1_0000_0000;
  };
};

export interface NodeHandle {
  readonly id: NodeId;
  readonly store: KvStore;
  readonly stateMachine: RecordingStateMachine;
  host: RaftHost<string> | undefined;
  readonly fatal: Error[];
}

export interface ClusterOptions {
  readonly ids: readonly NodeId[];
  readonly limits?: Partial<RaftHostLimits>;
  readonly acceptUnknownGroup?: boolean;
  readonly store?: (id: NodeId) => KvStore;
  readonly refuseProposals?: () => string | undefined;
  /** Per node: a reason makes it drop arriving entries and snapshots (RaftHostOptions.refuseEntries). */
  readonly refuseEntries?: (id: NodeId) => string | undefined;
  /** RaftHostOptions.pipelineWrites for every host (off by default: each turn awaits its write). */
  readonly pipelineWrites?: boolean;
}

/** Several hosts on one MemoryNetwork, driven by hand. `clock` is every host's now(). */
export class Cluster {
  readonly network = new MemoryNetwork();
  readonly nodes = new Map<NodeId, NodeHandle>();
  clockMs = 0;
  private seed = 1;

  constructor(private readonly options: ClusterOptions) {
    for (const id of options.ids) {
      const store = options.store?.(id) ?? new MemoryStore();
      this.nodes.set(id, {
        id,
        store,
        stateMachine: new RecordingStateMachine(),
        host: undefined,
        fatal: [],
      });
    }
  }

  async start(): Promise<void> {
    for (const id of this.nodes.keys()) await this.open(id);
  }

  /** Opens (or reopens, after a crash) the host of `id` over its store. */
  async open(id: NodeId, extraIds: readonly NodeId[] = []): Promise<RaftHost<string>> {
    let node = this.nodes.get(id);
    if (node === undefined) {
      node = {
        id,
        store: new MemoryStore(),
        stateMachine: new RecordingStateMachine(),
        host: undefined,
        fatal: [],
      };
      this.nodes.set(id, node);
    }
    const handle = node;
    const accept = this.options.acceptUnknownGroup === true || extraIds.includes(id);
    const host = await RaftHost.open<string>({
      nodeId: id,
      store: handle.store,
      transport: this.network.transport(id),
      stateMachine: handle.stateMachine,
      random: seeded((this.seed += 7919)),
      now: () => this.clockMs,
      electionTicks: 10,
      heartbeatTicks: 2,
      preVote: true,
      checkQuorum: true,
      limits: testLimits(this.options.limits),
      pipelineWrites: this.options.pipelineWrites ?? process.env.TEST_PIPELINE_WRITES === '1',
      onFatal: (error) => handle.fatal.push(error),
      ...(accept ? { acceptUnknownGroup: () => true } : {}),
      ...(this.options.refuseProposals === undefined
        ? {}
        : { refuseProposals: this.options.refuseProposals }),
      ...(this.options.refuseEntries === undefined
        ? {}
        : { refuseEntries: () => this.options.refuseEntries?.(id) }),
    });
    handle.host = host;
    return host;
  }

  /** Drops a host without closing it: only what its store holds survives. */
  crash(id: NodeId): void {
    const node = this.node(id);
    node.host = undefined;
    this.network.detach(id);
  }

  node(id: NodeId): NodeHandle {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  host(id: NodeId): RaftHost<string> {
    const host = this.node(id).host;
    if (host === undefined) throw new Error(`node ${id} is down`);
    return host;
  }

  liveHosts(): RaftHost<string>[] {
    return [...this.nodes.values()].flatMap((node) => (node.host === undefined ? [] : [node.host]));
  }

  /** One round: optionally a tick (and 10 ms of clock) on every host, then turns until quiet. */
  async round(tick = true): Promise<void> {
    if (tick) this.clockMs += 10;
    for (const host of this.liveHosts()) if (tick) host.tick();
    for (let pass = 0; pass < 20; pass += 1) {
      let worked = false;
      for (const host of this.liveHosts()) {
        if (!host.hasWork()) continue;
        worked = true;
        await host.turn();
      }
      // Snapshot transfers and their answers run on promises: let them move.
      await yieldToLoop();
      if (!worked) break;
    }
  }

  /** Runs rounds until `done()` holds; fails after `roundsMax` rounds. */
  async runUntil(done: () => boolean | Promise<boolean>, roundsMax = 500, what = 'condition'): Promise<void> {
    for (let round = 0; round < roundsMax; round += 1) {
      if (await done()) return;
      await this.round();
    }
    if (await done()) return;
    throw new Error(`${what} not reached within ${roundsMax} rounds`);
  }

  leaderOf(group: GroupId): NodeId | null {
    for (const node of this.nodes.values()) {
      const status = node.host?.status(group);
      if (status?.role === 'leader') return node.id;
    }
    return null;
  }

  async waitForLeader(group: GroupId, among?: readonly NodeId[]): Promise<NodeId> {
    await this.runUntil(
      () => {
        const leader = this.leaderOf(group);
        return leader !== null && (among === undefined || among.includes(leader));
      },
      500,
      `a leader of group ${group}`,
    );
    return this.leaderOf(group) as NodeId;
  }

  /** Resolves `promise` by driving the cluster until it settles. */
  async drive<T>(promise: Promise<T>, roundsMax = 500): Promise<T> {
    let settled = false;
    let value: T | undefined;
    void promise.then((result) => {
      settled = true;
      value = result;
    });
    await this.runUntil(() => settled, roundsMax, 'a settled request');
    return value as T;
  }
}
