// The cluster side of a node, assembled around its Raft host from the pieces of the other rooms:
// forwarding and remote calls (remote/), membership and formation (membership/), placement and
// replica moves (placement/), and the rounds and peer list that tie them together (this folder).
// node.ts builds it in two steps because the transport (which carries the forwarding service) must
// exist before the host, and the host before anything that proposes.

import type { TemplatedApp } from 'uWebSockets.js';

import { createSecretCheck } from '../../../net/auth.js';
import type { PeerTls } from '../../../net/grpc.js';
import type { DrivableHost, ExtraGrpcService, GroupId, NodeId, StateMachine } from '../../../raft/index.js';
import type { ContextService, Readiness } from '../../api/service.js';
import type { Config } from '../../config/config.js';
import type { CommandResult } from '../../context/results.js';
import type { Gateway } from '../../http/gateway.js';
import { logThrottle } from '../../telemetry/log-throttle.js';
import type { Logger } from '../../telemetry/logger.js';
import { clusterStatus, helloAnswer } from '../membership/cluster-status.js';
import type { ClusterStatusSource } from '../membership/cluster-status.js';
import { joinHostPort } from '../membership/discovery.js';
import type { Formation } from '../membership/formation.js';
import { startFormation } from '../membership/formation.js';
import { generationIntervalMs } from '../membership/generation.js';
import { acknowledgedBy, commitsHeld, termsHeld } from '../membership/acknowledged-entries.js';
import { registerInternalRoutes } from '../membership/internal-routes.js';
import { createMemberChanges } from '../membership/member-changes.js';
import { activeIds, currentMembers, namesIncarnation } from '../membership/membership.js';
import { MembershipStateMachine } from '../membership/membership-state-machine.js';
import { replicationFactor, votersFor } from '../placement/placement.js';
import { announceDraining, createDrainingPeers } from '../placement/draining-peers.js';
import { handOffLeadership, type HandoffResult } from '../placement/leadership-handoff.js';
import { createReplicaJanitor } from '../placement/replica-janitor.js';
import { createReplicaMover } from '../placement/replica-mover.js';
import { createServing } from '../placement/serving.js';
import type { ClusterConsensus } from '../remote/cluster-consensus.js';
import { createClusterConsensus } from '../remote/cluster-consensus.js';
import { forwardService } from '../remote/forward-protocol.js';
import type { LocalPropose } from '../remote/forward-server.js';
import { createForwardService } from '../remote/forward-server.js';
import { StreamForwarder } from '../remote/forward-stream.js';
import { RemoteCallClients } from '../remote/remote-call-client.js';
import type { LocalServiceTarget } from '../remote/remote-call-server.js';
import { createRemoteRunner, createRemoteService } from '../remote/remote-service.js';
import { groupOf } from '../../context/routing.js';
import type { RemoteStreams } from '../../stream/hub.js';
import type { PullAnswer, StreamPullTarget } from '../../stream/stream-pull.js';

/** How long a live-stream pull waits at the hosting node for an event before an empty answer. */
const streamPullWaitMs = 15_000;
import { createPeerDirectory } from './peer-directory.js';
import type { RoundIntervals } from './rounds.js';
import { startRounds } from './rounds.js';
import { routeStateMachines } from './state-machine-router.js';

export type ClusterConfig = Pick<
  Config,
  | 'clusterSeed'
  | 'clusterSecret'
  | 'expectedClusterSize'
  | 'raftProposalTimeoutMs'
  | 'raftTickMs'
  | 'raftElectionTicks'
>;

export interface ClusterTuning extends RoundIntervals {
  /** Groups one node moves at once. Default 8. */
  readonly movesMax?: number;
}

export interface ClusterOptions {
  readonly config: ClusterConfig;
  readonly nodeId: NodeId;
  /** This node's data directory incarnation (config/node-name.ts). */
  readonly incarnation: string;
  readonly groupCount: number;
  readonly logger: Logger;
  readonly tuning?: ClusterTuning;
  /** Mutual TLS between nodes (gRPC and internal HTTP); plain TCP when absent. */
  readonly tls?: PeerTls | undefined;
  /** Persists the data directory's next generation and resolves with it (generation.ts). */
  readonly generation?: { advance(): Promise<number> };
}

/** Step 1, before the host exists: the forwarding service the transport must carry. */
export interface ClusterWiring {
  readonly extraServices: readonly ExtraGrpcService[];
  readonly forwarder: StreamForwarder;
  /** The host's one state machine: the membership group routed apart from the context groups. */
  stateMachine(contexts: StateMachine<CommandResult>): StateMachine<CommandResult>;
  /**
   * For the host: a replica of an unknown group is created only once this node belongs (or is
   * being added) to the cluster, and only for a known member; the leader then sends a snapshot.
   */
  readonly acceptUnknownGroup: (group: GroupId, from: NodeId) => boolean;
  /**
   * Step 2: the host is open (so the transport is listening). `forget` deletes a local replica
   * (RaftHost.forgetGroup); without it, replicas moved away stay on disk.
   */
  attach(
    host: DrivableHost<CommandResult>,
    transport: ClusterTransport,
    forget?: (group: GroupId) => Promise<boolean>,
  ): ClusterRuntime;
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
  /** The groups this node hosts and still serves: replicas placement moved away are left out. */
  servingGroups(): readonly GroupId[];
  /**
   * Wraps this node's own service so that every operation works here, also for groups hosted
   * elsewhere (reads are run by a hosting node), and serves `local` to peers in the same way.
   * Call once, with the service that reads this node's state machine.
   */
  remoteService(local: ContextService): ContextService;
  /**
   * Live streams of groups this node does not serve: pulls from a node that does (stream-pull.ts).
   * `target` answers peers' pulls of the groups this node serves. Call after remoteService.
   */
  remoteStreams(target: StreamPullTarget): RemoteStreams;
  /** Not ready before joining; the caller adds its own checks (every group has a leader). */
  readiness(): Readiness | undefined;
  /** Starts probing the seed, then balancing; call once the HTTP endpoint answers hello. */
  start(httpPort: number): void;
  /**
   * The cluster part of a graceful shutdown: tells the peers this node drains (for up to
   * `drainTtlMs`, so their balancers hand it nothing), then hands every group it leads to another
   * voter, within `budgetMs`.
   */
  handOffLeadership(budgetMs: number, drainTtlMs: number): Promise<HandoffResult>;
  close(): Promise<void>;
}

export const prepareCluster = (options: ClusterOptions): ClusterWiring => {
  const { config, groupCount } = options;
  const peerAuth = { clusterSecret: config.clusterSecret, tls: options.tls };
  const forwarder = new StreamForwarder(peerAuth);
  const remoteCalls = new RemoteCallClients(peerAuth);
  let localPropose: LocalPropose | undefined;
  let serviceTarget: LocalServiceTarget | undefined;
  let streamTarget: StreamPullTarget | undefined;
  const extraServices: ExtraGrpcService[] = [
    {
      definition: forwardService,
      implementation: createForwardService({
        checkSecret: createSecretCheck(config.clusterSecret),
        propose: () => localPropose,
        service: () => serviceTarget,
      }),
    },
  ];
  const membership = new MembershipStateMachine(replicationFactor);
  let runtime: Runtime | undefined;
  const attach = (
    host: DrivableHost<CommandResult>,
    transport: ClusterTransport,
    forget?: (group: GroupId) => Promise<boolean>,
  ): ClusterRuntime => {
    localPropose = (group, data, timeoutMs) => host.propose(group, data, { timeoutMs });
    runtime = createRuntime({
      ...options,
      tuning: options.tuning ?? {},
      host,
      transport,
      forwarder,
      remoteCalls,
      membership,
      forget,
      serveToPeers: (target) => {
        serviceTarget = streamTarget === undefined ? target : { ...target, streams: streamTarget };
      },
      serveStreamsToPeers: (streams) => {
        streamTarget = streams;
        if (serviceTarget !== undefined) serviceTarget = { ...serviceTarget, streams };
      },
    });
    return runtime;
  };
  return {
    extraServices,
    forwarder,
    attach,
    stateMachine: (contexts) => routeStateMachines(groupCount, membership, contexts),
    acceptUnknownGroup: (group, from) => runtime?.acceptsReplicaFrom(group, from) ?? false,
  };
};

interface Runtime extends ClusterRuntime {
  acceptsReplicaFrom(group: GroupId, from: NodeId): boolean;
}

interface RuntimeOptions extends ClusterOptions {
  readonly tuning: ClusterTuning;
  readonly host: DrivableHost<CommandResult>;
  readonly transport: ClusterTransport;
  readonly forwarder: StreamForwarder;
  readonly remoteCalls: RemoteCallClients;
  readonly membership: MembershipStateMachine;
  /** Deletes a local replica; without it, replicas moved away stay on disk. */
  readonly forget: ((group: GroupId) => Promise<boolean>) | undefined;
  /** Hands the service peers may call to the forwarding service (remote-call-server.ts). */
  readonly serveToPeers: (target: LocalServiceTarget) => void;
  /** Hands the answering of peers' stream pulls to the forwarding service. */
  readonly serveStreamsToPeers: (target: StreamPullTarget) => void;
}

const createRuntime = (options: RuntimeOptions): Runtime => {
  const { config, nodeId, groupCount, logger, tuning, host, transport, membership, forget } = options;
  const metaGroup = groupCount;
  const { serves, placedHere } = createServing({ nodeId, host, membership, metaGroup });
  let formation: Formation | undefined;
  const directory = createPeerDirectory({
    nodeId,
    membership,
    formation: () => formation,
    channels: [transport, options.forwarder, options.remoteCalls],
  });
  const replicasOf = (group: GroupId): readonly NodeId[] => votersFor(group, activeIds(membership.members()));
  // At most one line per peer and reason every 10 s: a dead leader is retried many times.
  const mayLogPeerProblem = logThrottle();
  const peerProblem =
    (type: string, message: string) =>
    (peer: NodeId, reason: string): void => {
      if (mayLogPeerProblem(`${peer}\u0000${reason}`)) logger.warn({ type, peer, reason }, message);
    };

  const electionTimeoutMs = config.raftElectionTicks * config.raftTickMs;
  const consensus = createClusterConsensus({
    nodeId,
    host,
    forwarder: options.forwarder,
    proposeTimeoutMs: config.raftProposalTimeoutMs,
    readTimeoutMs: config.raftProposalTimeoutMs,
    // Elections take one to two election timeouts; past about twice that, a missing leader means
    // the group lost its quorum, and waiting longer only delays the 503.
    leaderWaitMs: Math.min(config.raftProposalTimeoutMs, 3 * electionTimeoutMs),
    onForwardProblem: peerProblem('forward_failed', 'forwarding a write to the leader failed'),
    replicasOf,
    serves,
  });

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const drainingPeers = createDrainingPeers();
  const peerHttpAddresses = (): string[] =>
    currentMembers(membership.members())
      .filter((member) => member.nodeId !== nodeId)
      .map((member) => joinHostPort(member.host, member.httpPort));
  /** Data groups only: the meta group is reported on its own. */
  const groups = (): readonly GroupId[] => host.groups().filter((group) => group !== metaGroup);
  const statusSource: ClusterStatusSource = {
    nodeId,
    metaGroup,
    host,
    membership,
    formation: () => formation,
    peers: () => directory.peers(),
    groups,
    raftPort: () => transport.port(),
  };
  const memberChanges = createMemberChanges({
    metaGroup,
    host,
    consensus,
    membership,
    replicationFactor,
    joined: () => formation?.joined() === true,
    logger,
  });

  const mover = createReplicaMover({
    nodeId,
    host,
    metaGroup,
    members: () => (membership.loaded() ? membership.members() : undefined),
    changeTimeoutMs: config.raftProposalTimeoutMs,
    logger,
    ...(tuning.movesMax === undefined ? {} : { movesMax: tuning.movesMax }),
  });

  const janitor =
    forget === undefined
      ? undefined
      : createReplicaJanitor({
          nodeId,
          host,
          placedElsewhere: (group) => {
            const members = membership.members();
            if (!membership.loaded() || members.length === 0) return false;
            // The meta group keeps a learner on every member, down to the very end of a removal, and
            // this node's own list may never hear of its end: a node no longer active lets it go
            // once the meta leader has (a demotion of an active voter to learner is not an end).
            if (group === metaGroup)
              return members.find((member) => member.nodeId === nodeId)?.state !== 'active';
            return !placedHere(group, members);
          },
          peerHttpAddresses,
          forget,
          clusterSecret: config.clusterSecret,
          tls: options.tls,
          logger,
        });

  return {
    consensus,
    extendHttp: (app, gateway) =>
      registerInternalRoutes(app, gateway, {
        clusterSecret: config.clusterSecret,
        hello: () => helloAnswer(statusSource),
        status: () => clusterStatus(statusSource),
        acknowledged: (follower) => ({
          nodeId,
          groups: acknowledgedBy(host, follower),
          terms: termsHeld(host),
          commits: commitsHeld(host),
        }),
        join: (member) => memberChanges.change({ type: 'join', member }),
        leave: async (id) => {
          memberChanges.requireMember(id);
          await memberChanges.change({ type: 'leave', nodeId: id });
        },
        forget: async (id) => {
          memberChanges.requireMember(id);
          await memberChanges.change({ type: 'forget', nodeId: id });
        },
        draining: (id, ttlMs) => {
          drainingPeers.mark(id, ttlMs);
          logger.info(
            { type: 'peer_draining', peer: id, ttlMs },
            ttlMs > 0
              ? 'a peer is shutting down: handing it no group'
              : 'a peer is back: it may lead groups again',
          );
        },
      }),
    servingGroups: () => host.groups().filter(serves),
    remoteService: (local) => {
      options.serveToPeers({
        service: local,
        serves,
        groupCount,
        onInternal: (error, request) =>
          logger.error({ err: error, operation: request.operation }, 'a remote service call failed'),
      });
      return createRemoteService({
        nodeId,
        local,
        caller: options.remoteCalls,
        groupCount,
        serves,
        replicasOf,
        // Longer than what the hosting node may spend (a PUT reads, then proposes), so its own
        // answer (a raft_timeout, say) arrives rather than this node's deadline.
        timeoutMs: 2 * config.raftProposalTimeoutMs + 1_000,
        onProblem: peerProblem('remote_call_failed', 'a remote service call to a peer failed'),
      });
    },
    remoteStreams: (target) => {
      options.serveStreamsToPeers(target);
      const run = createRemoteRunner({
        nodeId,
        caller: options.remoteCalls,
        replicasOf,
        timeoutMs: 2 * config.raftProposalTimeoutMs + 1_000,
        onProblem: peerProblem('stream_pull_failed', 'a live-stream pull from a peer failed'),
      });
      const waitMs = streamPullWaitMs;
      return {
        serves,
        waitMs,
        // The deadline outlasts the hosting node's wait, so its (possibly empty) answer arrives.
        pull: async (contextId, request) =>
          (await run(
            groupOf(contextId, groupCount),
            { operation: 'streamPull', args: [contextId, request] },
            request.waitMs + 2 * config.raftProposalTimeoutMs + 1_000,
          )) as PullAnswer,
      };
    },
    acceptsReplicaFrom: (_group, from) =>
      formation?.acceptsReplicas() === true && from !== nodeId && directory.peers().has(from),
    readiness: () => {
      if (formation === undefined) return { ready: false, reason: 'starting' };
      const waiting = formation.waitingReason();
      return waiting === undefined ? undefined : { ready: false, reason: waiting };
    },
    start: (httpPort) => {
      if (closed || formation !== undefined) return;
      const { incarnation } = options;
      formation = startFormation({
        nodeId,
        incarnation,
        seed: config.clusterSeed,
        clusterSecret: config.clusterSecret,
        tls: options.tls,
        expectedSize: config.expectedClusterSize,
        groupCount,
        metaGroup,
        host,
        onPeers: () => directory.publish(),
        selfPorts: () => ({ httpPort, raftPort: transport.port() }),
        registered: () => namesIncarnation(membership.members(), nodeId, incarnation),
        logger,
      });
      // Back from a restart: peers may still hold this node's draining mark from its shutdown; clear
      // it (best effort; the mark expires anyway) so their balancers hand its groups back now.
      void announceDraining({
        self: nodeId,
        ttlMs: 0,
        peerHttpAddresses: config.clusterSeed.map((peer) => joinHostPort(peer.host, peer.port)),
        clusterSecret: config.clusterSecret,
        tls: options.tls,
        timeoutMs: 1_000,
      });
      const reporter = options.generation;
      if (reporter !== undefined) {
        let reporting = false;
        timers.push(
          setInterval(() => {
            if (reporting || formation?.joined() !== true) return;
            reporting = true;
            // Persisted first, reported second: the record never exceeds what the directory holds.
            void reporter
              .advance()
              .then((generation) =>
                memberChanges.change({ type: 'generation', nodeId, incarnation, generation }),
              )
              .catch((error: unknown) =>
                logger.debug(
                  { type: 'generation_report_failed', err: error },
                  'recording a generation failed',
                ),
              )
              .finally(() => {
                reporting = false;
              });
          }, generationIntervalMs),
        );
      }
      timers.push(
        ...startRounds({
          nodeId,
          metaGroup,
          host,
          formation,
          membership,
          memberChanges,
          mover,
          janitor,
          observeLeaders: () => consensus.observeLeaders(groups()),
          observeIntervalMs: Math.max(10, config.raftTickMs),
          intervals: tuning,
          draining: (node) => drainingPeers.isDraining(node),
        }),
      );
    },
    handOffLeadership: async (budgetMs, drainTtlMs) => {
      const started = Date.now();
      const told = await announceDraining({
        self: nodeId,
        ttlMs: drainTtlMs,
        peerHttpAddresses: peerHttpAddresses(),
        clusterSecret: config.clusterSecret,
        tls: options.tls,
        timeoutMs: Math.max(1, Math.min(1_000, Math.floor(budgetMs / 4))),
      });
      logger.info({ type: 'draining_announced', peers: told }, 'told the peers this node is shutting down');
      return handOffLeadership(host, nodeId, Math.max(0, budgetMs - (Date.now() - started)));
    },
    close: async () => {
      closed = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await formation?.close();
      options.forwarder.close();
      options.remoteCalls.close();
    },
  };
};
