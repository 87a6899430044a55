// The cluster side of a node, assembled around its Raft host: forwarding (both directions),
// formation, leader balancing and the internal HTTP endpoints. node.ts builds the pieces in two
// steps because the transport (which carries the forwarding service) must exist before the host,
// and the host before anything that proposes.

import type { TemplatedApp } from 'uWebSockets.js';

import type { DrivableHost } from '../../raft/api.js';
import type { GroupId, NodeId } from '../../raft/core/types.js';
import { createSecretCheck } from '../../raft/transport/auth.js';
import type { ExtraGrpcService } from '../../raft/transport/grpc-transport.js';
import type { Config } from '../config/config.js';
import type { CommandResult } from '../context/results.js';
import type { Gateway } from '../http/gateway.js';
import type { Logger } from '../logger.js';
import type { Readiness } from '../service.js';
import type { ClusterConsensus } from './cluster-consensus.js';
import { createClusterConsensus } from './cluster-consensus.js';
import { ForwardClients } from './forward-client.js';
import { forwardService } from './forward-protocol.js';
import type { LocalPropose } from './forward-server.js';
import { createForwardService } from './forward-server.js';
import type { Formation } from './formation.js';
import { startFormation } from './formation.js';
import type { ClusterStatus } from './internal-protocol.js';
import { registerInternalRoutes } from './internal-routes.js';
import { balanceLeadersOnce } from './leader-balancer.js';

export type ClusterConfig = Pick<
  Config,
  | 'clusterSeed'
  | 'clusterSecret'
  | 'expectedClusterSize'
  | 'raftProposalTimeoutMs'
  | 'raftTickMs'
  | 'raftElectionTicks'
>;

export interface ClusterTuning {
  /** Leadership balancing rounds. Default 1000 ms; the first waits one round after joining. */
  readonly balanceIntervalMs?: number;
  /** Transfers started per round. Default 16. */
  readonly transfersPerRound?: number;
}

/** Step 1, before the host exists: the forwarding service the transport must carry. */
export interface ClusterWiring {
  readonly extraServices: readonly ExtraGrpcService[];
  readonly forwarder: ForwardClients;
  /** Step 2: the host is open (so the transport is listening). */
  attach(host: DrivableHost<CommandResult>, transport: ClusterTransport): ClusterRuntime;
}

/** What the runtime needs of the Raft transport. */
export interface ClusterTransport {
  setPeers(peers: ReadonlyMap<NodeId, string>): void;
  port(): number;
}

export interface ClusterRuntime {
  readonly consensus: ClusterConsensus;
  /** Registers the internal endpoints (pass to startHttpServer's `extend`). */
  extendHttp(app: TemplatedApp, gateway: Gateway): void;
  /** Not ready before joining; the caller adds its own checks (every group has a leader). */
  readiness(): Readiness | undefined;
  /** Starts probing the seed, then balancing; call once the HTTP endpoint answers hello. */
  start(): void;
  close(): Promise<void>;
}

export const prepareCluster = (
  config: ClusterConfig,
  nodeId: NodeId,
  groupCount: number,
  logger: Logger,
  tuning: ClusterTuning = {},
): ClusterWiring => {
  const forwarder = new ForwardClients({ clusterSecret: config.clusterSecret });
  let localPropose: LocalPropose | undefined;
  const extraServices: ExtraGrpcService[] = [
    {
      definition: forwardService,
      implementation: createForwardService({
        checkSecret: createSecretCheck(config.clusterSecret),
        propose: () => localPropose,
      }),
    },
  ];
  const attach = (host: DrivableHost<CommandResult>, transport: ClusterTransport): ClusterRuntime => {
    localPropose = (group, data, timeoutMs) => host.propose(group, data, { timeoutMs });
    return createRuntime(config, nodeId, groupCount, logger, tuning, host, transport, forwarder);
  };
  return { extraServices, forwarder, attach };
};

const createRuntime = (
  config: ClusterConfig,
  nodeId: NodeId,
  groupCount: number,
  logger: Logger,
  tuning: ClusterTuning,
  host: DrivableHost<CommandResult>,
  transport: ClusterTransport,
  forwarder: ForwardClients,
): ClusterRuntime => {
  const electionTimeoutMs = config.raftElectionTicks * config.raftTickMs;
  const forwardProblemsLogged = new Map<string, number>();
  const consensus = createClusterConsensus({
    nodeId,
    host,
    forwarder,
    proposeTimeoutMs: config.raftProposalTimeoutMs,
    readTimeoutMs: config.raftProposalTimeoutMs,
    // Elections take one to two election timeouts; past about twice that, a missing leader means
    // the group lost its quorum, and waiting longer only delays the 503.
    leaderWaitMs: Math.min(config.raftProposalTimeoutMs, 3 * electionTimeoutMs),
    onForwardProblem: (peer, reason) => {
      // At most one line per peer and reason every 10 s: a dead leader is retried many times.
      const key = `${peer}\u0000${reason}`;
      const now = Date.now();
      if (now - (forwardProblemsLogged.get(key) ?? 0) < 10_000) return;
      forwardProblemsLogged.set(key, now);
      logger.warn({ type: 'forward_failed', peer, reason }, 'forwarding a write to the leader failed');
    },
  });

  let formation: Formation | undefined;
  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const groups = (): readonly GroupId[] => host.groups();

  const status = (): ClusterStatus => ({
    node_id: nodeId,
    joined: formation?.joined() ?? false,
    members: [...(formation?.peers() ?? new Map<NodeId, string>())].map(([id, address]) => ({
      node_id: id,
      raft_address: address,
    })),
    groups: groups().map((group) => {
      const groupStatus = host.status(group);
      return {
        group,
        voters: [...(groupStatus?.conf.voters ?? [])].sort(),
        learners: [...(groupStatus?.conf.learners ?? [])].sort(),
        leader: host.leaderOf(group),
        term: groupStatus?.term ?? 0,
        commit: groupStatus?.commit ?? 0,
        applied: groupStatus?.applied ?? 0,
      };
    }),
  });

  return {
    consensus,
    extendHttp: (app, gateway) =>
      registerInternalRoutes(app, gateway, {
        clusterSecret: config.clusterSecret,
        hello: () => ({ nodeId, raftPort: transport.port() }),
        status,
      }),
    readiness: () => {
      if (formation === undefined) return { ready: false, reason: 'starting' };
      const waiting = formation.waitingReason();
      return waiting === undefined ? undefined : { ready: false, reason: waiting };
    },
    start: () => {
      if (closed || formation !== undefined) return;
      formation = startFormation({
        nodeId,
        seed: config.clusterSeed,
        clusterSecret: config.clusterSecret,
        expectedSize: config.expectedClusterSize,
        groupCount,
        host,
        onPeers: (peers) => {
          transport.setPeers(peers);
          forwarder.setPeers(peers);
        },
        logger,
      });
      const started = formation;
      timers.push(setInterval(() => consensus.observeLeaders(groups()), Math.max(10, config.raftTickMs)));
      const balanceIntervalMs = tuning.balanceIntervalMs ?? 1_000;
      let roundsJoined = 0;
      timers.push(
        setInterval(() => {
          if (!started.joined()) return;
          // Let the first elections settle before moving leaders around.
          roundsJoined += 1;
          if (roundsJoined < 2) return;
          balanceLeadersOnce(host, nodeId, tuning.transfersPerRound ?? 16);
        }, balanceIntervalMs),
      );
    },
    close: async () => {
      closed = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await formation?.close();
      forwarder.close();
    },
  };
};
