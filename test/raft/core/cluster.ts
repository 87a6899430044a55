// An in-process network of RawNodes for the core's tests (etcd's "network"): no sockets and no clocks.
// Time is tick(), messages sit in a queue until delivered by hand, and each node's Ready is persisted to
// an in-memory "disk" by hand, so a test controls every interleaving (drops, cuts, crashes).

import { RawNode } from '../../../raft/core/raw-node.js';
import { EntryKind, decodeConfChange } from '../../../raft/core/types.js';
import type {
  ConfState,
  Entry,
  HardState,
  Index,
  Message,
  NodeId,
  RaftConfig,
  ReadState,
  Ready,
  SnapshotMeta,
} from '../../../raft/core/types.js';
import { seededRandom } from '../../../raft/core/random.js';

/** What one node has on disk, plus what its state machine applied (for checking). */
export interface Disk {
  hardState: HardState;
  snapshot: SnapshotMeta;
  entries: Entry[];
  applied: Index;
  /** Membership as of `applied`. */
  conf: ConfState;
  /** Every entry the state machine applied, in order (a snapshot install appends nothing). */
  appliedEntries: Entry[];
  readStates: ReadState[];
}

export interface ClusterOptions {
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  readonly inflightMsgsMax?: number;
  readonly inflightBytesMax?: number;
  readonly msgBytesMax?: number;
  readonly uncommittedBytesMax?: number;
  readonly seed?: number;
  /** Overrides the per-node random source (e.g. a constant to pin election timeouts). */
  readonly random?: (id: NodeId) => () => number;
}

/** A small deterministic PRNG (mulberry32): tests replay exactly from a seed. */
export { seededRandom };

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (data: Uint8Array): string => new TextDecoder().decode(data);

interface Member {
  node: RawNode;
  disk: Disk;
  config: RaftConfig;
}

export class Cluster {
  readonly ids: NodeId[] = [];
  /** Messages sent but not yet delivered, in send order. */
  queue: Message[] = [];
  /** Every message ever handed to the network (delivered or not), for assertions. */
  readonly sent: Message[] = [];
  private readonly members = new Map<NodeId, Member>();
  private readonly cutLinks = new Set<string>();
  private readonly options: ClusterOptions;
  /** When set, a message is delivered only if this returns true (others are dropped). */
  filter: ((m: Message) => boolean) | undefined;

  constructor(voters: readonly NodeId[], options: ClusterOptions = {}, learners: readonly NodeId[] = []) {
    this.options = options;
    const conf: ConfState = { voters: [...voters], learners: [...learners] };
    for (const id of [...voters, ...learners]) this.addNode(id, conf);
  }

  /** Adds a node with an empty log and the given bootstrap membership (a joining node passes none). */
  addNode(id: NodeId, conf: ConfState = { voters: [], learners: [] }): RawNode {
    const disk: Disk = {
      hardState: { term: 0, vote: null, commit: 0 },
      snapshot: { index: 0, term: 0, conf },
      entries: [],
      applied: 0,
      conf,
      appliedEntries: [],
      readStates: [],
    };
    const config = this.configFor(id);
    const node = new RawNode(config, {
      hardState: disk.hardState,
      snapshot: disk.snapshot,
      entries: [],
      applied: 0,
      conf,
    });
    this.members.set(id, { node, disk, config });
    if (!this.ids.includes(id)) this.ids.push(id);
    return node;
  }

  node(id: NodeId): RawNode {
    return this.member(id).node;
  }

  disk(id: NodeId): Disk {
    return this.member(id).disk;
  }

  // -------------------------------------------------------------------------------------------
  // Ready processing: persist, queue messages, apply, advance (the host's order).

  /** Processes one Ready of `id` if it has one; returns it. */
  processReady(id: NodeId): Ready | undefined {
    const { node, disk } = this.member(id);
    if (!node.hasReady()) return undefined;
    const ready = node.ready();
    persist(disk, ready);
    for (const m of ready.messages) {
      this.sent.push(m);
      this.queue.push(m);
    }
    for (const entry of ready.committedEntries) {
      if (entry.kind === EntryKind.Conf) disk.conf = node.applyConfChange(decodeConfChange(entry.data));
      disk.applied = entry.index;
      disk.appliedEntries.push(entry);
    }
    disk.readStates.push(...ready.readStates);
    node.advance(ready);
    return ready;
  }

  /** Processes every node's Readys until none has one. Returns whether any work was done. */
  processAll(): boolean {
    let worked = false;
    for (let round = 0; round < 100; round++) {
      let any = false;
      for (const id of this.ids) if (this.processReady(id) !== undefined) any = true;
      if (!any) return worked;
      worked = true;
    }
    throw new Error('processAll did not quiesce in 100 rounds');
  }

  /** Delivers every queued message once (new ones are queued for later). Returns how many arrived. */
  deliverQueued(): number {
    const batch = this.queue;
    this.queue = [];
    let delivered = 0;
    for (const m of batch) if (this.deliver(m)) delivered++;
    return delivered;
  }

  /** Steps `m` into its recipient unless the link is cut or the filter drops it. */
  deliver(m: Message): boolean {
    const member = this.members.get(m.to);
    if (member === undefined || this.cutLinks.has(linkKey(m.from, m.to))) return false;
    if (this.filter !== undefined && !this.filter(m)) return false;
    member.node.step(m);
    return true;
  }

  /** Processes and delivers until nothing moves (bounded). */
  stabilize(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round++) {
      const worked = this.processAll();
      if (this.queue.length === 0 && !worked) return;
      this.deliverQueued();
    }
    throw new Error(`cluster did not stabilize in ${roundsMax} rounds`);
  }

  /** Removes and returns queued messages matching `predicate` (for stepping by hand). */
  take(predicate: (m: Message) => boolean): Message[] {
    const taken = this.queue.filter(predicate);
    this.queue = this.queue.filter((m) => !predicate(m));
    return taken;
  }

  // -------------------------------------------------------------------------------------------
  // Time and faults

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.node(id).tick();
  }

  /** Ticks every node `times` times, stabilizing after each tick. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.ids) this.node(id).tick();
      this.stabilize();
    }
  }

  cut(a: NodeId, b: NodeId): void {
    this.cutLinks.add(linkKey(a, b));
    this.cutLinks.add(linkKey(b, a));
  }

  isolate(id: NodeId): void {
    for (const other of this.ids) if (other !== id) this.cut(id, other);
  }

  heal(): void {
    this.cutLinks.clear();
    this.filter = undefined;
  }

  /** Crash and restart from disk: everything not persisted through a Ready is lost. */
  restart(id: NodeId): RawNode {
    const member = this.member(id);
    const { disk, config } = member;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    member.node = new RawNode(config, {
      hardState: disk.hardState,
      snapshot: disk.snapshot,
      entries: [...disk.entries],
      applied: disk.applied,
      conf: disk.conf,
    });
    return member.node;
  }

  /** The host compacts `id`'s log up to its applied index. */
  compact(id: NodeId): void {
    const { node, disk } = this.member(id);
    const index = disk.applied;
    const term = node.termAt(index);
    if (term === undefined) throw new Error(`cannot compact ${id} at ${index}`);
    node.compact(index, term, disk.conf);
    disk.entries = disk.entries.filter((e) => e.index > index);
    disk.snapshot = { index, term, conf: disk.conf };
  }

  // -------------------------------------------------------------------------------------------
  // Convenience

  /** Campaigns `id` and runs the cluster until quiet; returns whether it leads. */
  elect(id: NodeId): boolean {
    this.node(id).campaign();
    this.stabilize();
    return this.node(id).status().role === 'leader';
  }

  leaders(): NodeId[] {
    return this.ids.filter((id) => this.node(id).status().role === 'leader');
  }

  /** The leader of the highest term, if any. */
  leader(): NodeId | undefined {
    let best: NodeId | undefined;
    let bestTerm = -1;
    for (const id of this.leaders()) {
      const term = this.node(id).status().term;
      if (term > bestTerm) {
        best = id;
        bestTerm = term;
      }
    }
    return best;
  }

  /** Proposes `value` on `id` and stabilizes; returns the proposal's index. */
  propose(id: NodeId, value: string): Index {
    const result = this.node(id).propose(bytes(value));
    if (!result.ok) throw new Error(`proposal refused on ${id}: ${result.code}`);
    this.stabilize();
    return result.index;
  }

  /** The data of the entries `id` applied (no-ops and conf entries excluded). */
  appliedValues(id: NodeId): string[] {
    return this.disk(id)
      .appliedEntries.filter((e) => e.kind === EntryKind.Normal && e.data.byteLength > 0)
      .map((e) => text(e.data));
  }

  private member(id: NodeId): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`unknown node ${id}`);
    return member;
  }

  private configFor(id: NodeId): RaftConfig {
    const o = this.options;
    const seed = (o.seed ?? 1) * 7919 + this.ids.length * 104_729 + id.length;
    return {
      id,
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      random: o.random?.(id) ?? seededRandom(seed),
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      inflightMsgsMax: o.inflightMsgsMax ?? 256,
      inflightBytesMax: o.inflightBytesMax ?? 0,
      msgBytesMax: o.msgBytesMax ?? 1024 * 1024,
      uncommittedBytesMax: o.uncommittedBytesMax ?? 0,
    };
  }
}

/** Persists a Ready the way the host does: snapshot, then entries (replacing a suffix), then hard state. */
export function persist(disk: Disk, ready: Ready): void {
  if (ready.snapshot !== undefined) {
    disk.snapshot = ready.snapshot;
    disk.entries = [];
    disk.applied = ready.snapshot.index;
    disk.conf = ready.snapshot.conf;
  }
  const first = ready.entries[0];
  if (first !== undefined) {
    const keep = first.index - disk.snapshot.index - 1;
    if (keep < 0 || keep > disk.entries.length) {
      throw new Error(`Ready entries from ${first.index} do not attach to the stored log`);
    }
    disk.entries.length = keep;
    disk.entries.push(...ready.entries);
  }
  if (ready.hardState !== undefined) disk.hardState = ready.hardState;
}

const linkKey = (from: NodeId, to: NodeId): string => `${from}->${to}`;

export const isType =
  (type: Message['type'], to?: NodeId) =>
  (m: Message): boolean =>
    m.type === type && (to === undefined || m.to === to);
