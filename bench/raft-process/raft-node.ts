// One Raft process for tests and benchmarks: a LevelDB store, the gRPC transport on 127.0.0.1 with a
// cluster secret, a RaftHost over the kv-counter state machine, and the real-time loop. It hosts
// groups 0..groups-1, each bootstrapped with the same member list (idempotent across restarts, so a
// restarted process recovers from its data dir). Used in-process by the benchmark and, behind a small
// HTTP control server (main.ts), as a separate process by the real-I/O tests.

import type {
  GroupStatus,
  RaftHostLimits,
  GroupId,
  NodeId,
  LinkError,
  TransportStats,
} from '../../raft/index.js';
import {
  createGrpcTransport,
  openLevelStore,
  RaftHost,
  startHostLoop,
  type GrpcTransport,
  type HostLoop,
  type RaftHostStats,
} from '../../raft/index.js';
import { KvCounterStateMachine, type KvCounterResult } from './kv-counter-state-machine.js';

export interface RaftNodeOptions {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  /** 0 binds an ephemeral port (see `raftPort`). */
  readonly raftPort: number;
  readonly clusterSecret: string;
  readonly groups: number;
  /** Voters of every group; must include nodeId. */
  readonly members: readonly NodeId[];
  /** Addresses (host:port) of the other members; may also be set later with setPeers. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly reconnectBackoffMs: { readonly initial: number; readonly max: number };
  readonly limits: RaftHostLimits;
  /** A failed write or broken invariant. The process entry point exits; in-process users record it. */
  readonly onFatal: (error: Error) => void;
}

/** The service's defaults (src/config/options.ts), so benchmarks measure what production runs. */
export const defaultLimits: RaftHostLimits = {
  proposalQueueMax: 20_000,
  pendingProposalsMax: 50_000,
  inboundQueueMax: 100_000,
  inflightBytesMax: 4 * 1024 * 1024,
  inflightMsgsMax: 256,
  msgBytesMax: 1024 * 1024,
  uncommittedBytesMax: 64 * 1024 * 1024,
  logRetainEntries: 2_000,
};

export interface LinkErrorRecord {
  readonly peer: NodeId;
  readonly code: number;
  readonly details: string;
}

export interface NodeStatus {
  readonly nodeId: NodeId;
  readonly raftPort: number;
  readonly groups: readonly GroupStatus[];
  readonly host: RaftHostStats;
  readonly transport: TransportStats;
  /** The most recent link errors (bounded), for asserting on refused connections. */
  readonly linkErrors: readonly LinkErrorRecord[];
  readonly linkErrorsTotal: number;
}

export interface RaftNode {
  readonly nodeId: NodeId;
  readonly host: RaftHost<KvCounterResult>;
  readonly stateMachine: KvCounterStateMachine;
  readonly transport: GrpcTransport;
  raftPort(): number;
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  /** Groups this node currently leads. */
  ledGroups(): GroupId[];
  status(): NodeStatus;
  close(): Promise<void>;
}

const LINK_ERRORS_KEPT = 32;

export const startRaftNode = async (options: RaftNodeOptions): Promise<RaftNode> => {
  if (!options.members.includes(options.nodeId)) {
    throw new Error(`raft node: members ${options.members.join(',')} do not include ${options.nodeId}`);
  }
  const linkErrors: LinkErrorRecord[] = [];
  let linkErrorsTotal = 0;
  const onLinkError = (peer: NodeId, error: LinkError): void => {
    linkErrorsTotal += 1;
    linkErrors.push({ peer, code: error.code, details: error.details });
    if (linkErrors.length > LINK_ERRORS_KEPT) linkErrors.shift();
  };

  const store = await openLevelStore(options.dataDir);
  const transport = createGrpcTransport({
    nodeId: options.nodeId,
    listenHost: '127.0.0.1',
    listenPort: options.raftPort,
    clusterSecret: options.clusterSecret,
    reconnectBackoffMs: options.reconnectBackoffMs,
    onLinkError,
  });
  const stateMachine = new KvCounterStateMachine();
  let host: RaftHost<KvCounterResult>;
  try {
    host = await RaftHost.open<KvCounterResult>({
      nodeId: options.nodeId,
      store,
      transport,
      stateMachine,
      random: Math.random,
      now: Date.now,
      electionTicks: options.electionTicks,
      heartbeatTicks: options.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      limits: options.limits,
      onFatal: options.onFatal,
    });
  } catch (error) {
    await transport.stop();
    await store.close();
    throw error;
  }
  transport.setPeers(options.peers);
  for (let group = 0; group < options.groups; group += 1) {
    await host.bootstrapGroup(group, options.members);
    // Recovered or just bootstrapped (a synced write): either way this applied index is durable.
    stateMachine.noteRecovered(group, host.status(group)?.applied ?? 0);
  }
  const loop: HostLoop = startHostLoop(host, { tickMs: options.tickMs });

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    // Top-down: no more turns, then settle waiters, then the network, then the store.
    await loop.stop();
    await host.close();
    await transport.stop();
    await store.close();
  };

  return {
    nodeId: options.nodeId,
    host,
    stateMachine,
    transport,
    raftPort: () => transport.port(),
    setPeers: (peers) => transport.setPeers(peers),
    ledGroups: () => host.groups().filter((group) => host.status(group)?.role === 'leader'),
    status: () => ({
      nodeId: options.nodeId,
      raftPort: transport.port(),
      groups: host.groups().flatMap((group) => {
        const status = host.status(group);
        // The per-follower progress map is large and only interesting when debugging.
        if (status === undefined) return [];
        const { progress: _progress, ...rest } = status;
        return [rest];
      }),
      host: host.stats(),
      transport: transport.stats(),
      linkErrors: [...linkErrors],
      linkErrorsTotal,
    }),
    close: () => (closing ??= close()),
  };
};
