// One fastpaca node: LevelDB store → Raft host (gRPC transport) → context state machine → service →
// HTTP gateway. Every write goes through Raft even when the node is alone: its 256 groups are
// single-member groups that commit on the local fsync, so a cluster adds replicas without changing
// the data path. With a cluster seed (src/cluster/) the groups are bootstrapped only once the
// expected peers are known, writes for groups led elsewhere are forwarded over gRPC, and the node is
// ready once it joined and every group it hosts has a leader.
//
// Start order is bottom-up and close order top-down, so no layer ever calls into one that is gone:
// HTTP stops taking requests first, then the Raft loop finishes its turn, then the store closes.

import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { RaftHostLimits, RaftHostStats } from '../../raft/index.js';
import { createGrpcTransport, openLevelStore, RaftHost, startHostLoop } from '../../raft/index.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/config-error.js';
import { resolveIncarnation, resolveNodeName } from '../config/node-name.js';
import { prepareCluster } from '../cluster/runtime/cluster-runtime.js';
import { createLocalConsensus } from '../context/consensus.js';
import { createContextService } from '../context/context-service.js';
import type { CommandResult } from '../context/results.js';
import { ContextStateMachine } from '../context/state-machine.js';
import { startHttpServer } from '../http/server.js';
import { startDiskGuard } from '../storage/disk-guard.js';
import type { Logger } from '../telemetry/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { defaultGroupCount } from '../context/routing.js';
import type { Readiness } from '../api/service.js';
import { createTokenEstimator } from '../tokens/create-token-estimator.js';
import { withFsyncFault } from './fault-injection.js';
import { createNodeArchive, type NodeArchive } from '../../archiver/index.js';

export interface RunningNode {
  readonly nodeId: string;
  readonly httpPort: number;
  readonly raftPort: number;
  /**
   * Graceful stop: HTTP drains, the archiver flushes (bounded), the Raft loop finishes its turn, the
   * store closes. Idempotent.
   */
  close(): Promise<void>;
  /** Writes and acknowledges what the archiver has pending (bounded); a no-op without one. */
  flushArchive(deadlineMs?: number): Promise<void>;
}

export interface StartNodeHooks {
  /**
   * A failed write or fsync, or a broken invariant. Production ends the process (a store that
   * failed must never be retried in place); in-process tests may record it instead.
   */
  readonly onFatal?: (error: Error) => void;
  /** Free bytes of the data directory's file system (tests simulate a filling disk with it). */
  readonly diskFreeBytes?: (dir: string) => Promise<number>;
}

/** The LevelDB directory inside the data directory (the node name file sits beside it). */
export const storeDirName = 'store';

export const startNode = async (
  config: Config,
  logger: Logger,
  hooks: StartNodeHooks = {},
): Promise<RunningNode> => {
  const clustered = config.clusterSeed.length > 0;
  if (clustered && config.clusterSecret === undefined) {
    // An open Raft (and forwarding) port is a write path into every context: no silent fallback.
    throw new ConfigError(
      'FASTPACA_CLUSTER_SEED is set but FASTPACA_CLUSTER_SECRET (--cluster-secret) is not: set the same ' +
        'secret (16+ characters) on every node so they can authenticate each other',
      { option: 'clusterSecret' },
    );
  }
  await mkdir(config.dataDir, { recursive: true });
  const nodeId = await resolveNodeName(config);
  const log = logger.child({ node: nodeId });
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close();
  };

  try {
    const disk = await startDiskGuard({
      dir: config.dataDir,
      floorBytes: config.diskFreeMinBytes,
      ...(hooks.diskFreeBytes === undefined ? {} : { freeBytes: hooks.diskFreeBytes }),
      onChange: (low, freeBytes) =>
        low
          ? log.error(
              { freeBytes, floorBytes: config.diskFreeMinBytes },
              'free disk space below the floor: refusing writes',
            )
          : log.info({ freeBytes }, 'free disk space above the floor again: taking writes'),
    });
    closers.push(async () => disk.stop());
    // withFsyncFault: a test-only fault hook, off unless FASTPACA_FAULT_FSYNC_FAIL_AFTER is set.
    const store = withFsyncFault(await openLevelStore(join(config.dataDir, storeDirName)));
    closers.push(() => store.close());

    const metrics = createMetrics({ defaultLabels: { node: nodeId } });
    const stateMachine = new ContextStateMachine({
      cacheContextsMax: config.cacheContextsMax,
      cacheBytesMax: config.cacheBytesMax,
      readPageBytesMax: config.readPageBytesMax,
      // Every replica refuses the same entries; each says so once, when it applies one.
      onRefusedEntry: ({ group, index, reason, error }) =>
        log.error({ group, index, reason, err: error }, 'committed entry refused'),
      // The archive is built right below; nothing is applied before the Raft host starts.
      onEvent: (event) => archive?.noteEvent(event),
    });
    const archive: NodeArchive | undefined = createNodeArchive({
      config,
      nodeId,
      stateMachine,
      metrics,
      log,
    });
    const wiring = clustered
      ? prepareCluster({
          config,
          nodeId,
          incarnation: await resolveIncarnation(config.dataDir),
          groupCount: defaultGroupCount,
          logger: log,
        })
      : undefined;
    const transport = createGrpcTransport({
      nodeId,
      listenHost: config.host,
      listenPort: config.raftPort,
      // Alone and without a configured secret, a random one nobody else knows: the Raft port then
      // refuses every caller, instead of being an unauthenticated write path into every context.
      clusterSecret: config.clusterSecret ?? randomBytes(32).toString('base64url'),
      onLinkError: (peer, error) => log.warn({ peer, err: error }, 'raft link error'),
      ...(wiring === undefined ? {} : { extraServices: wiring.extraServices }),
    });
    closers.push(() => transport.stop());

    const fatal =
      hooks.onFatal ??
      ((error: Error): void => {
        log.fatal({ err: error }, 'raft storage failed; exiting');
        process.exit(1);
      });
    const host = await RaftHost.open<CommandResult>({
      nodeId,
      store,
      transport,
      stateMachine: wiring?.stateMachine(stateMachine) ?? stateMachine,
      random: Math.random,
      now: Date.now,
      electionTicks: config.raftElectionTicks,
      heartbeatTicks: config.raftHeartbeatTicks,
      preVote: config.raftPreVote,
      checkQuorum: config.raftCheckQuorum,
      limits: hostLimits(config),
      onFatal: fatal,
      // Forwarded writes are proposed here too: a leader low on disk refuses them (503).
      refuseProposals: () => disk.refusal(),
      ...(wiring === undefined ? {} : { acceptUnknownGroup: wiring.acceptUnknownGroup }),
      timers: {
        turn: () => metrics.raft.turnDurationSeconds.startTimer(),
        syncedWrite: () => metrics.raft.fsyncDurationSeconds.startTimer(),
      },
    });
    closers.push(() => host.close());

    // Alone, the node is its own cluster at once; in a cluster, formation bootstraps the groups
    // once the peers are known (a restart recovers them from disk instead).
    const cluster = wiring?.attach(host, transport, (group) => host.forgetGroup(group));
    if (cluster === undefined) {
      for (let group = 0; group < defaultGroupCount; group += 1) await host.bootstrapGroup(group, [nodeId]);
    }
    const loop = startHostLoop(host, { tickMs: config.raftTickMs });
    closers.push(() => loop.stop());
    // Closed before the loop stops (closers run in reverse): no formation or balancing on a closing host.
    if (cluster !== undefined) closers.push(() => cluster.close());

    const estimator = await createTokenEstimator(config.tokenEstimator, {
      workers: config.tokenizerWorkers,
      queuePartsMax: config.tokenizerQueueMax,
      batchTimeoutMs: config.tokenizerBatchTimeoutMs,
      onWorkerExit: ({ workerIndex, error }) => {
        metrics.tokenizer.workerRestartsTotal.inc();
        log.error({ err: error, workerIndex }, 'tokenizer worker exited; restarting it');
      },
      onFallback: ({ reason, length }) => {
        metrics.tokenizer.fallbacksTotal.inc({ reason });
        log.warn({ reason, length }, 'a message part was counted by the chars4 fallback estimate');
      },
    });
    closers.push(() => estimator.close());

    const consensus =
      cluster?.consensus ??
      createLocalConsensus(host, {
        proposeTimeoutMs: config.raftProposalTimeoutMs,
        readTimeoutMs: config.raftProposalTimeoutMs,
      });
    const localService = createContextService({
      consensus,
      stateMachine,
      estimator,
      clock: () => new Date(),
      groupCount: defaultGroupCount,
      metrics,
      ...(archive === undefined ? {} : { archive: archive.reader }),
    });
    if (archive !== undefined) {
      // Acks are proposed here, on the leader the archiver found; never forwarded elsewhere.
      archive.start(host, createLocalConsensus(host, { proposeTimeoutMs: config.raftProposalTimeoutMs }));
      const nodeArchive = archive;
      // Closed after HTTP (closers run in reverse) and before the Raft loop: its acks need Raft.
      closers.push(() => nodeArchive.close());
    }
    // In a cluster, reads of groups hosted elsewhere are run by a node that hosts them.
    const service = cluster?.remoteService(localService) ?? localService;

    let closing = false;
    const readiness = (): Readiness => {
      if (closing) return { ready: false, reason: 'shutting down' };
      const notJoined = cluster?.readiness();
      if (notJoined !== undefined) return notJoined;
      const archiveProblem = archive?.readinessProblem();
      if (archiveProblem !== undefined) return { ready: false, reason: archiveProblem };
      // Every group this node hosts (all 256 alone; its replicas in a larger cluster, not counting
      // replicas it has lost in a move, which no leader talks to any more).
      let leaderless = 0;
      for (const group of cluster?.servingGroups() ?? host.groups()) {
        if (host.leaderOf(group) === null) leaderless += 1;
      }
      return leaderless === 0
        ? { ready: true }
        : { ready: false, reason: `${leaderless} groups have no leader` };
    };
    metrics.bindRaft({
      groups: () => host.groups().length,
      leaderGroups: () => host.groups().filter((group) => host.leaderOf(group) === nodeId).length,
      groupsWithoutLeader: () => host.groups().filter((group) => host.leaderOf(group) === null).length,
      maxTerm: () => Math.max(0, ...host.groups().map((group) => host.status(group)?.term ?? 0)),
      proposalQueueDepth: () => host.proposalQueueDepth(),
    });

    const syncRaftCounters = raftCounterSync(metrics);
    const http = await startHttpServer({
      host: config.host,
      port: config.port,
      service,
      readiness,
      metrics: async () => {
        syncRaftCounters(host.stats());
        return { contentType: metrics.contentType, body: await metrics.render() };
      },
      apiKeys: config.apiKeys,
      protectedMode: config.protectedMode,
      ratePerKey: config.ratePerKey,
      rateBurst: config.rateBurst,
      limits: { bodyBytesMax: config.bodyLimitBytes },
      refuseWrites: () => disk.refusal(),
      load: {
        inflightRequestsMax: config.httpInflightRequestsMax,
        bufferedBytesMax: config.httpBufferedBytesMax,
        bodyTimeoutMs: config.httpBodyTimeoutMs,
      },
      logger: log,
      // Route labels are "METHOD /pattern" (or a fixed word for unmatched requests).
      onRequest: (label, status, durationMs) => {
        const space = label.indexOf(' ');
        metrics.recordHttpRequest({
          method: space > 0 ? label.slice(0, space) : 'OTHER',
          route: space > 0 ? label.slice(space + 1) : label,
          status,
          durationSeconds: durationMs / 1000,
        });
      },
      // The whole close is bounded by shutdownTimeoutMs (the CLI enforces it): leave the Raft loop
      // and the store a third of it after HTTP has drained.
      closeTimeoutMs: Math.floor((config.shutdownTimeoutMs * 2) / 3),
      ...(cluster === undefined ? {} : { extend: (app, gateway) => cluster.extendHttp(app, gateway) }),
    });
    closers.push(() => http.close());
    // Peers find this node through its HTTP hello, so probing starts once that answers.
    cluster?.start(http.port);

    log.info(
      { httpPort: http.port, raftPort: transport.port(), dataDir: config.dataDir, groups: defaultGroupCount },
      'fastpaca node started',
    );
    let closed: Promise<void> | undefined;
    return {
      nodeId,
      httpPort: http.port,
      raftPort: transport.port(),
      close: () => {
        closing = true;
        closed ??= closeAll().then(() => log.info('fastpaca node stopped'));
        return closed;
      },
      flushArchive: async (deadlineMs) => archive?.flush(deadlineMs),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
};

const hostLimits = (config: Config): RaftHostLimits => ({
  proposalQueueMax: config.raftProposalQueueMax,
  pendingProposalsMax: config.raftPendingProposalsMax,
  inboundQueueMax: config.raftInboundQueueMax,
  inflightBytesMax: config.raftInflightBytesMax,
  inflightMsgsMax: config.raftInflightMsgsMax,
  msgBytesMax: config.raftMsgBytesMax,
  uncommittedBytesMax: config.raftUncommittedBytesMax,
  logRetainEntries: config.raftLogRetainEntries,
  logRetainBytes: config.raftLogRetainBytes,
});

/**
 * The host keeps monotonic counters of its own (it knows nothing of Prometheus); at scrape time the
 * growth since the previous scrape is added to the matching Prometheus counters.
 */
const raftCounterSync = (metrics: Metrics): ((stats: RaftHostStats) => void) => {
  let last: RaftHostStats | undefined;
  return (stats) => {
    const grown = (key: keyof RaftHostStats): number => stats[key] - (last?.[key] ?? 0);
    metrics.raft.fsyncsTotal.inc(grown('syncedWrites'));
    metrics.raft.entriesPersistedTotal.inc(grown('entriesPersisted'));
    metrics.raft.messagesSentTotal.inc(grown('messagesSent'));
    metrics.raft.framesSentTotal.inc(grown('framesSent'));
    metrics.raft.messagesReceivedTotal.inc(grown('messagesReceived'));
    metrics.raft.snapshotsSentTotal.inc(grown('snapshotsSent'));
    metrics.raft.snapshotsReceivedTotal.inc(grown('snapshotsReceived'));
    last = stats;
  };
};
