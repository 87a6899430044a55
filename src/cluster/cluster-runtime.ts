// The cluster side of a node, assembled around its Raft host: forwarding (both directions),
// formation, leader balancing and the internal HTTP endpoints. node.ts builds the pieces in two
// steps because the transport (which carries the forwarding service) must exist before the host,
// and the host before anything that proposes.

import type { TemplatedApp } from 'uWebSockets.js';

import type { DrivableHost, StateMachine } from '../../raft/api.js';
import type { GroupId, NodeId } from '../../raft/core/types.js';
import { createSecretCheck } from '../../raft/transport/auth.js';
import type { ExtraGrpcService } from '../../raft/transport/grpc-transport.js';
import type { Config } from '../config/config.js';
import type { CommandResult } from '../context/results.js';
import type { Gateway } from '../http/gateway.js';
import type { Logger } from '../logger.js';
import { ServiceError } from '../errors.js';
import { failureToServiceError } from '../consensus.js';
import type { ContextService, Readiness } from '../service.js';
import type { ClusterConsensus } from './cluster-consensus.js';
import { createClusterConsensus } from './cluster-consensus.js';
import { StreamForwarder } from './forward-stream.js';
import { forwardService } from './forward-protocol.js';
import type { LocalPropose } from './forward-server.js';
import { createForwardService } from './forward-server.js';
import type { Formation } from './formation.js';
import { startFormation } from './formation.js';
import type { ClusterStatus, GroupView, MemberView, StatusMember } from './internal-protocol.js';
import { registerInternalRoutes } from './internal-routes.js';
import { balanceLeadersOnce } from './leader-balancer.js';
import { joinHostPort } from './discovery.js';
import type { ClusterMember, MembershipCommand } from './membership.js';
import {
  activeIds,
  applyMembership,
  currentMembers,
  encodeMembershipCommand,
  namesIncarnation,
} from './membership.js';
import { MembershipStateMachine } from './membership-state-machine.js';
import { replicationFactor, votersFor } from './placement.js';
import { createReplicaJanitor } from './replica-janitor.js';
import { createReplicaMover, desiredFor } from './replica-mover.js';
import { RemoteCallClients } from './remote-call-client.js';
import type { LocalServiceTarget } from './remote-call-server.js';
import { createRemoteService } from './remote-service.js';
import { routeStateMachines } from './state-machine-router.js';
import { faultPeerAddresses, withFaultPeerAddresses } from '../fault-injection.js';

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
  /** Transfers started per round. Default 32: a node that won ~40 extra groups at formation hands them
   * over within two rounds. */
  readonly transfersPerRound?: number;
  /** Replica-move rounds (reconcile.ts). Default 200 ms. */
  readonly moveIntervalMs?: number;
  /** Groups one node moves at once. Default 8. */
  readonly movesMax?: number;
  /** How often to look for replicas that moved away, to delete them. Default 2000 ms. */
  readonly janitorIntervalMs?: number;
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
  /** Not ready before joining; the caller adds its own checks (every group has a leader). */
  readiness(): Readiness | undefined;
  /** Starts probing the seed, then balancing; call once the HTTP endpoint answers hello. */
  start(httpPort: number): void;
  close(): Promise<void>;
}

export const prepareCluster = (
  config: ClusterConfig,
  nodeId: NodeId,
  /** This node's data directory incarnation (config/node-name.ts). */
  incarnation: string,
  groupCount: number,
  logger: Logger,
  tuning: ClusterTuning = {},
): ClusterWiring => {
  const forwarder = new StreamForwarder({ clusterSecret: config.clusterSecret });
  const remoteCalls = new RemoteCallClients({ clusterSecret: config.clusterSecret });
  let localPropose: LocalPropose | undefined;
  let serviceTarget: LocalServiceTarget | undefined;
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
    runtime = createRuntime(
      config,
      nodeId,
      incarnation,
      groupCount,
      logger,
      tuning,
      host,
      transport,
      forwarder,
      membership,
      forget,
      remoteCalls,
      (target) => {
        serviceTarget = target;
      },
    );
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

const memberView = (member: ClusterMember): MemberView => ({
  node_id: member.nodeId,
  host: member.host,
  http_port: member.httpPort,
  raft_port: member.raftPort,
  state: member.state,
  ...(member.incarnation === undefined ? {} : { incarnation: member.incarnation }),
});

const createRuntime = (
  config: ClusterConfig,
  nodeId: NodeId,
  incarnation: string,
  groupCount: number,
  logger: Logger,
  tuning: ClusterTuning,
  host: DrivableHost<CommandResult>,
  transport: ClusterTransport,
  forwarder: StreamForwarder,
  membership: MembershipStateMachine,
  forget: ((group: GroupId) => Promise<boolean>) | undefined,
  remoteCalls: RemoteCallClients,
  serveToPeers: (target: LocalServiceTarget) => void,
): Runtime => {
  const metaGroup = groupCount;
  /**
   * A local replica counts while placement still wants it here, or while it leads (a leader's view
   * is current). One that was moved away may never hear of its removal: its leader goes stale.
   */
  const serves = (group: GroupId): boolean => {
    if (host.leaderOf(group) === nodeId) return true;
    const members = membership.members();
    if (members.length > 0 && !placedHere(group, members)) return false;
    return host.leaderOf(group) !== null || host.status(group) !== undefined;
  };
  /** Per group, whether placement wants a replica here; cached (it hashes) until the list changes. */
  const placed = new Map<GroupId, boolean>();
  const placedHere = (group: GroupId, members: readonly ClusterMember[]): boolean => {
    let here = placed.get(group);
    if (here === undefined) {
      const desired = desiredFor(group, metaGroup, members);
      here = desired.voters.includes(nodeId) || desired.learners.includes(nodeId);
      placed.set(group, here);
    }
    return here;
  };
  membership.onChange(() => placed.clear());
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
    replicasOf: (group) => votersFor(group, activeIds(membership.members())),
    serves: (group) => serves(group),
  });

  let formation: Formation | undefined;
  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  /** Data groups only: the meta group is reported on its own. */
  const groups = (): readonly GroupId[] => host.groups().filter((group) => group !== metaGroup);

  /** Peers from the seed and hello answers, overlaid by the member list (which knows every node). */
  const peers = (): Map<NodeId, string> => {
    const all = new Map(formation?.peers() ?? new Map<NodeId, string>());
    for (const member of membership.members()) {
      if (member.nodeId === nodeId) continue;
      // A removed node's Raft traffic is no longer welcome (even if the seed still names it).
      if (member.state === 'removed') all.delete(member.nodeId);
      else all.set(member.nodeId, joinHostPort(member.host, member.raftPort));
    }
    return all;
  };
  let peersKey = '';
  // Test-only (FASTPACA_FAULT_PEER_ADDRESSES, empty unless set): the fault suite's proxies.
  const peerOverrides = faultPeerAddresses();
  const publishPeers = (): void => {
    const current = withFaultPeerAddresses(peers(), peerOverrides);
    const key = JSON.stringify([...current].sort());
    if (key === peersKey) return;
    peersKey = key;
    transport.setPeers(current);
    forwarder.setPeers(current);
    remoteCalls.setPeers(current);
  };
  membership.onChange(() => publishPeers());

  const groupView = (group: GroupId): GroupView => {
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
  };

  const status = (): ClusterStatus => {
    // Every peer this node talks to, and everyone on the member list (itself, removed nodes too).
    const members = new Map<NodeId, StatusMember>();
    for (const [id, address] of peers()) members.set(id, { node_id: id, raft_address: address });
    for (const member of membership.members()) {
      members.set(member.nodeId, {
        node_id: member.nodeId,
        raft_address: joinHostPort(member.host, member.raftPort),
        http_address: joinHostPort(member.host, member.httpPort),
        state: member.state,
        ...(member.incarnation === undefined ? {} : { incarnation: member.incarnation }),
      });
    }
    return {
      node_id: nodeId,
      joined: formation?.joined() ?? false,
      members: [...members.values()].sort((a, b) =>
        a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0,
      ),
      groups: groups().map(groupView),
      ...(host.status(metaGroup) === undefined ? {} : { meta: groupView(metaGroup) }),
    };
  };

  /** Proposes a membership change to the meta group (forwarded to its leader); throws a ServiceError. */
  const changeMembers = async (command: MembershipCommand): Promise<void> => {
    if (formation?.joined() !== true) {
      throw new ServiceError('raft_unavailable', 'This node has not joined the cluster yet', {
        retryAfterSeconds: 1,
      });
    }
    // A join the member list as this node knows it refuses already is answered without a meta entry:
    // a refused node asks again every second. An accepted one is decided by the meta group's apply.
    if (command.type === 'join' && membership.loaded()) {
      const preview = applyMembership(membership.members(), command, replicationFactor).outcome;
      if (!preview.ok) throw new ServiceError('conflict', preview.reason);
    }
    const outcome = await consensus.proposeBytes(metaGroup, encodeMembershipCommand(command));
    if (!outcome.ok) throw failureToServiceError(outcome);
    if ('error' in outcome.result) throw new ServiceError('conflict', outcome.result.message);
  };
  const requireMember = (id: NodeId): void => {
    if (!membership.members().some((member) => member.nodeId === id))
      throw new ServiceError('not_found', `Node ${JSON.stringify(id)} is not a cluster member`);
  };

  /**
   * As the meta group's leader (its applied conf is then the authority): reports each removed member
   * the meta group no longer counts, so its name may come back as a new incarnation (membership.ts).
   * A removed member is never added back, so the report cannot go stale.
   */
  let purging = false;
  const purgeGone = (): void => {
    const meta = host.status(metaGroup);
    if (purging || meta?.role !== 'leader' || !membership.loaded()) return;
    const counted = new Set([...meta.conf.voters, ...meta.conf.learners]);
    const gone = membership
      .members()
      .filter(
        (member) => member.state === 'removed' && member.purged !== true && !counted.has(member.nodeId),
      );
    if (gone.length === 0) return;
    purging = true;
    void Promise.all(
      gone.map(({ nodeId: id }) =>
        changeMembers({ type: 'purge', nodeId: id }).catch((error: unknown) =>
          logger.warn(
            { type: 'member_purge_failed', node: id, err: error },
            'reporting a removed node gone failed',
          ),
        ),
      ),
    ).finally(() => {
      purging = false;
    });
  };

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
          peerHttpAddresses: () =>
            currentMembers(membership.members())
              .filter((member) => member.nodeId !== nodeId)
              .map((member) => joinHostPort(member.host, member.httpPort)),
          forget,
          clusterSecret: config.clusterSecret,
          logger,
        });

  /** After a restart or a snapshot install, the member list is read back from the meta replica. */
  let loading = false;
  const loadMembership = (): void => {
    if (loading || membership.loaded() || host.status(metaGroup) === undefined) return;
    loading = true;
    membership
      .load(host.groupKv(metaGroup))
      .catch((error: unknown) => logger.error({ err: error }, 'reading the member list failed'))
      .finally(() => {
        loading = false;
      });
  };

  return {
    consensus,
    extendHttp: (app, gateway) =>
      registerInternalRoutes(app, gateway, {
        clusterSecret: config.clusterSecret,
        hello: () => {
          const formedWith = formation?.formedWith();
          const joined = formation?.joined() ?? false;
          return {
            nodeId,
            raftPort: transport.port(),
            joined,
            members: membership.members().map(memberView),
            ...(formedWith === undefined ? {} : { formedWith }),
            ...(joined || formedWith !== undefined ? {} : { known: formation?.memberIds() ?? [nodeId] }),
          };
        },
        status,
        join: (member) => changeMembers({ type: 'join', member }),
        leave: async (id) => {
          requireMember(id);
          await changeMembers({ type: 'leave', nodeId: id });
        },
        forget: async (id) => {
          requireMember(id);
          await changeMembers({ type: 'forget', nodeId: id });
        },
      }),
    servingGroups: () => host.groups().filter(serves),
    remoteService: (local) => {
      serveToPeers({
        service: local,
        serves,
        groupCount,
        onInternal: (error, request) =>
          logger.error({ err: error, operation: request.operation }, 'a remote service call failed'),
      });
      return createRemoteService({
        nodeId,
        local,
        caller: remoteCalls,
        groupCount,
        serves,
        replicasOf: (group) => votersFor(group, activeIds(membership.members())),
        // Longer than what the hosting node may spend (a PUT reads, then proposes), so its own
        // answer (a raft_timeout, say) arrives rather than this node's deadline.
        timeoutMs: 2 * config.raftProposalTimeoutMs + 1_000,
        onProblem: (peer, reason) => {
          const key = `${peer}\u0000${reason}`;
          const now = Date.now();
          if (now - (forwardProblemsLogged.get(key) ?? 0) < 10_000) return;
          forwardProblemsLogged.set(key, now);
          logger.warn({ type: 'remote_call_failed', peer, reason }, 'a remote service call to a peer failed');
        },
      });
    },
    acceptsReplicaFrom: (_group, from) =>
      formation?.acceptsReplicas() === true && from !== nodeId && peers().has(from),
    readiness: () => {
      if (formation === undefined) return { ready: false, reason: 'starting' };
      const waiting = formation.waitingReason();
      return waiting === undefined ? undefined : { ready: false, reason: waiting };
    },
    start: (httpPort) => {
      if (closed || formation !== undefined) return;
      formation = startFormation({
        nodeId,
        incarnation,
        seed: config.clusterSeed,
        clusterSecret: config.clusterSecret,
        expectedSize: config.expectedClusterSize,
        groupCount,
        metaGroup,
        host,
        onPeers: () => publishPeers(),
        selfPorts: () => ({ httpPort, raftPort: transport.port() }),
        registered: () => namesIncarnation(membership.members(), nodeId, incarnation),
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
          balanceLeadersOnce(host, nodeId, tuning.transfersPerRound ?? 32, (group, voters) => {
            // A group whose voters are not yet placement's may be handed to a voter about to go.
            const members = membership.members();
            if (members.length === 0) return false;
            const wanted = desiredFor(group, metaGroup, members).voters;
            return voters.length !== wanted.length || voters.some((node) => !wanted.includes(node));
          });
        }, balanceIntervalMs),
      );
      timers.push(
        setInterval(() => {
          loadMembership();
          if (!started.joined()) return;
          mover.round();
          purgeGone();
        }, tuning.moveIntervalMs ?? 200),
      );
      if (janitor !== undefined) {
        timers.push(
          setInterval(() => {
            if (started.joined()) void janitor.round();
          }, tuning.janitorIntervalMs ?? 2_000),
        );
      }
    },
    close: async () => {
      closed = true;
      for (const timer of timers.splice(0)) clearInterval(timer);
      await formation?.close();
      forwarder.close();
      remoteCalls.close();
    },
  };
};
