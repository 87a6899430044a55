// The simulated network: every `send` becomes an in-flight frame with a simulated delay, and the
// scheduler decides when each frame is delivered, dropped, duplicated or delayed. Links can be cut one
// way (asymmetric partition) or both ways. Snapshot transfers travel as frames too, and their answer
// travels back as a frame, so partitions and crashes break them as they would break a gRPC stream.

import type { GroupMessage, SnapshotChunk, Transport, TransportHandlers } from '../../../raft/api.js';
import type { GroupId, Message, NodeId } from '../../../raft/core/types.js';
import { deepCopy } from './deep-copy.js';
import type { Prng } from './prng.js';
import type { SimClock } from './sim-clock.js';

export interface SimNetworkOptions {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

type Pairs = readonly (readonly [Uint8Array, Uint8Array])[];

export type FramePayload =
  | { readonly kind: 'messages'; readonly batch: readonly GroupMessage[] }
  | {
      readonly kind: 'snapshot';
      readonly transferId: number;
      readonly group: GroupId;
      readonly message: Message;
      readonly pairs: Pairs;
    }
  | { readonly kind: 'snapshot-reply'; readonly transferId: number; readonly ok: boolean };

export interface Frame {
  readonly id: number;
  readonly from: NodeId;
  readonly to: NodeId;
  deliverAtMs: number;
  /** Immutable once queued: each delivery hands the receiver its own copy. */
  readonly payload: FramePayload;
}

interface Transfer {
  readonly sender: SimTransport;
  readonly resolve: (installed: boolean) => void;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
}

export class SimNetwork {
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
  };
  /** Transport contract breaks by a host: a receiver that threw, a sender that streamed bad chunks. */
  readonly contractErrors: Error[] = [];
  private readonly frames = new Map<number, Frame>();
  private readonly transports = new Map<NodeId, SimTransport>();
  private readonly transfers = new Map<number, Transfer>();
  /** Directed links that are cut, as `from->to`. */
  private readonly cutLinks = new Set<string>();
  private nextFrameId = 1;
  private nextTransferId = 1;

  private delays: SimNetworkOptions;

  constructor(
    private readonly clock: SimClock,
    private readonly prng: Prng,
    options: SimNetworkOptions,
  ) {
    this.delays = options;
  }

  /** Change the delay range of frames sent from now on (the liveness phase sends without delay). */
  setDelays(delays: SimNetworkOptions): void {
    this.delays = delays;
  }

  frame(frameId: number): Frame | undefined {
    return this.frames.get(frameId);
  }

  /** A transport for a new incarnation of `node`. Its previous incarnation must be disconnected. */
  connect(node: NodeId): SimTransport {
    if (this.transports.get(node)?.isAlive === true) {
      throw new Error(`node ${node} is already connected: disconnect (crash) it first`);
    }
    const transport = new SimTransport(node, this);
    this.transports.set(node, transport);
    return transport;
  }

  /** The node crashed: its transport dies, and snapshot transfers it was installing fail. */
  disconnect(node: NodeId): void {
    const transport = this.transports.get(node);
    if (transport === undefined) return;
    transport.kill();
    for (const transferId of transport.takeInstalls()) this.finishTransfer(transferId, false);
    for (const [transferId, transfer] of this.transfers) {
      if (transfer.sender === transport) this.transfers.delete(transferId);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Partitions.

  cut(from: NodeId, to: NodeId): void {
    this.cutLinks.add(linkKey(from, to));
  }

  /** Cut every link between the two sides, both ways. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cut(a, b);
        this.cut(b, a);
      }
    }
  }

  heal(): void {
    this.cutLinks.clear();
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.cutLinks.has(linkKey(from, to));
  }

  get cutLinkCount(): number {
    return this.cutLinks.size;
  }

  // ------------------------------------------------------------------------------------------
  // Frames in flight.

  inFlight(): readonly Frame[] {
    return [...this.frames.values()];
  }

  /** Frames whose simulated delay has elapsed. */
  deliverable(): readonly Frame[] {
    const nowMs = this.clock.now();
    return this.inFlight().filter((frame) => frame.deliverAtMs <= nowMs);
  }

  deliver(frameId: number): void {
    const frame = this.take(frameId);
    const receiver = this.transports.get(frame.to);
    if (!this.canReach(frame.from, frame.to) || receiver === undefined || !receiver.isListening) {
      this.lose(frame);
      return;
    }
    this.stats.delivered += 1;
    const payload = deepCopy(frame.payload);
    if (payload.kind === 'messages') this.handOver(() => receiver.receiveMessages(frame.from, payload.batch));
    else if (payload.kind === 'snapshot') this.install(receiver, frame.from, payload);
    else this.finishTransfer(payload.transferId, payload.ok);
  }

  drop(frameId: number): void {
    this.lose(this.take(frameId));
  }

  duplicate(frameId: number): void {
    const frame = this.frames.get(frameId);
    if (frame === undefined) throw new Error(`no frame ${frameId} in flight`);
    this.stats.duplicated += 1;
    this.queue(frame.from, frame.to, frame.payload);
  }

  delay(frameId: number, delayMs: number): void {
    const frame = this.frames.get(frameId);
    if (frame === undefined) throw new Error(`no frame ${frameId} in flight`);
    frame.deliverAtMs += delayMs;
  }

  /** Make every frame deliverable now (the liveness phase stops delaying). */
  expediteAll(): void {
    const nowMs = this.clock.now();
    for (const frame of this.frames.values()) frame.deliverAtMs = Math.min(frame.deliverAtMs, nowMs);
  }

  // ------------------------------------------------------------------------------------------
  // Called by transports.

  /** @internal */
  queue(from: NodeId, to: NodeId, payload: FramePayload): void {
    const delayMs = this.prng.between(this.delays.delayMsMin, this.delays.delayMsMax);
    const frame: Frame = {
      id: this.nextFrameId++,
      from,
      to,
      deliverAtMs: this.clock.now() + delayMs,
      payload,
    };
    this.frames.set(frame.id, frame);
    this.stats.sent += 1;
  }

  /** @internal Whether a send from `from` to `to` can start now (a connection exists). */
  isReachable(from: NodeId, to: NodeId): boolean {
    return this.canReach(from, to) && this.transports.get(to)?.isListening === true;
  }

  /** @internal */
  reportContractError(error: unknown): void {
    this.contractErrors.push(asError(error));
  }

  /** @internal */
  openTransfer(sender: SimTransport, resolve: (installed: boolean) => void): number {
    const transferId = this.nextTransferId++;
    this.transfers.set(transferId, { sender, resolve });
    this.stats.snapshotsSent += 1;
    return transferId;
  }

  // ------------------------------------------------------------------------------------------

  private take(frameId: number): Frame {
    const frame = this.frames.get(frameId);
    if (frame === undefined) throw new Error(`no frame ${frameId} in flight`);
    this.frames.delete(frameId);
    return frame;
  }

  /** A lost frame of a snapshot transfer breaks the transfer, as a broken stream would. */
  private lose(frame: Frame): void {
    this.stats.dropped += 1;
    if (frame.payload.kind !== 'messages') this.finishTransfer(frame.payload.transferId, false);
  }

  private install(
    receiver: SimTransport,
    from: NodeId,
    payload: Extract<FramePayload, { kind: 'snapshot' }>,
  ): void {
    const { transferId, group, message, pairs } = payload;
    receiver.addInstall(transferId);
    const reply = (ok: boolean): void => {
      if (!receiver.removeInstall(transferId)) return;
      if (ok) this.stats.snapshotsInstalled += 1;
      this.queue(receiver.node, from, { kind: 'snapshot-reply', transferId, ok });
    };
    const installing = this.handOver(() => receiver.receiveSnapshot(from, group, message, pairs));
    if (installing === undefined) {
      reply(false);
      return;
    }
    installing.then(reply, (error: unknown) => {
      this.contractErrors.push(asError(error));
      reply(false);
    });
  }

  private finishTransfer(transferId: number, installed: boolean): void {
    const transfer = this.transfers.get(transferId);
    if (transfer === undefined) return;
    this.transfers.delete(transferId);
    if (transfer.sender.isAlive) transfer.resolve(installed);
  }

  /** Runs a receiver's handler; a throw breaks the Transport contract and is kept for the checker. */
  private handOver<T>(handler: () => T): T | undefined {
    try {
      return handler();
    } catch (error) {
      this.contractErrors.push(asError(error));
      return undefined;
    }
  }
}

const linkKey = (from: NodeId, to: NodeId): string => `${from}->${to}`;

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));

/** One incarnation's endpoint, handed to `RaftHost.open` as its `Transport`. */
export class SimTransport implements Transport {
  private handlers: TransportHandlers | undefined;
  private state: 'created' | 'listening' | 'stopped' | 'dead' = 'created';
  private peers: ReadonlySet<NodeId> = new Set();
  private unreachable = new Set<NodeId>();
  /** Snapshot transfers delivered here whose install has not answered yet. */
  private readonly installs = new Set<number>();
  /** Sends to peers not in `setPeers`: dropped, as the contract says. */
  unknownPeerDrops = 0;

  constructor(
    readonly node: NodeId,
    private readonly network: SimNetwork,
  ) {}

  get isAlive(): boolean {
    return this.state === 'created' || this.state === 'listening';
  }

  get isListening(): boolean {
    return this.state === 'listening';
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.state === 'dead') return;
    this.handlers = handlers;
    this.state = 'listening';
  }

  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.peers = new Set(peers.keys());
  }

  send(to: NodeId, batch: readonly GroupMessage[]): void {
    if (!this.isAlive || batch.length === 0) return;
    if (!this.peers.has(to)) {
      this.unknownPeerDrops += 1;
      return;
    }
    if (!this.network.isReachable(this.node, to)) {
      this.unreachable.add(to);
      return;
    }
    this.network.queue(this.node, to, { kind: 'messages', batch: deepCopy(batch) });
  }

  async sendSnapshot(to: NodeId, chunks: AsyncIterable<SnapshotChunk>): Promise<boolean> {
    let snapshot: CollectedSnapshot;
    try {
      snapshot = await collectChunks(chunks);
    } catch (error) {
      this.network.reportContractError(error);
      return false;
    }
    if (!this.isAlive || !this.peers.has(to)) return false;
    if (!this.network.isReachable(this.node, to)) {
      this.unreachable.add(to);
      return false;
    }
    return new Promise<boolean>((resolve) => {
      const transferId = this.network.openTransfer(this, resolve);
      this.network.queue(this.node, to, { kind: 'snapshot', transferId, ...deepCopy(snapshot) });
    });
  }

  drainUnreachable(): readonly NodeId[] {
    const peers = [...this.unreachable];
    this.unreachable = new Set();
    return peers;
  }

  async stop(): Promise<void> {
    if (this.state !== 'dead') this.state = 'stopped';
  }

  /** @internal */
  kill(): void {
    this.state = 'dead';
  }

  /** @internal */
  receiveMessages(from: NodeId, batch: readonly GroupMessage[]): void {
    this.handlers?.onMessages(from, batch);
  }

  /** @internal */
  receiveSnapshot(from: NodeId, group: GroupId, message: Message, pairs: Pairs): Promise<boolean> {
    if (this.handlers === undefined) return Promise.resolve(false);
    return this.handlers.onSnapshot(from, group, message, pairs);
  }

  /** @internal */
  addInstall(transferId: number): void {
    this.installs.add(transferId);
  }

  /** @internal Returns false if the install was already answered (or its node crashed). */
  removeInstall(transferId: number): boolean {
    return this.installs.delete(transferId);
  }

  /** @internal */
  takeInstalls(): number[] {
    const transferIds = [...this.installs];
    this.installs.clear();
    return transferIds;
  }
}

interface CollectedSnapshot {
  readonly group: GroupId;
  readonly message: Message;
  readonly pairs: Pairs;
}

/** Reassemble chunks, enforcing the order the receiver would enforce. */
const collectChunks = async (chunks: AsyncIterable<SnapshotChunk>): Promise<CollectedSnapshot> => {
  let first: SnapshotChunk | undefined;
  const pairs: (readonly [Uint8Array, Uint8Array])[] = [];
  let expectedSeq = 0;
  for await (const chunk of chunks) {
    if (chunk.seq !== expectedSeq)
      throw new Error(`snapshot chunk ${chunk.seq} arrived, expected ${expectedSeq}`);
    if (first !== undefined && chunk.group !== first.group) throw new Error('snapshot chunks of two groups');
    first ??= chunk;
    expectedSeq += 1;
    pairs.push(...chunk.pairs);
    if (chunk.last) break;
  }
  if (first === undefined) throw new Error('a snapshot stream without chunks');
  return { group: first.group, message: first.message, pairs };
};
