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
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { HostLoop, RaftHostLimits, RaftHostStats } from '../../raft/index.js';
import {
  createGrpcTransport,
  inspectNewestLog,
  openLevelStore,
  RaftHost,
  startHostLoop,
} from '../../raft/index.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/config-error.js';
import { resolveIncarnation, resolveNodeName } from '../config/node-name.js';
import { readGeneration, writeGeneration } from '../cluster/membership/generation.js';
import type { RecoveredLog } from '../cluster/membership/acknowledged-entries.js';
import { recoveredLogs } from '../cluster/membership/acknowledged-entries.js';
import { recheckUntilAnswered, runStartChecks } from '../cluster/membership/start-checks.js';
import { asError } from '../context/apply-guard.js';
import { prepareCluster } from '../cluster/runtime/cluster-runtime.js';
import { createLocalConsensus } from '../context/consensus.js';
import { defaultRequestLimits } from '../api/schemas.js';
import { loadNodeTls } from './tls-files.js';
import { createContextService } from '../context/context-service.js';
import type { CommandResult } from '../context/results.js';
import { ContextStateMachine } from '../context/state-machine.js';
import { startHttpServer } from '../http/server.js';
import { restoreMarkerFileName } from '../snapshot/restore-marker.js';
import { registerSnapshotRoute } from '../snapshot/snapshot-route.js';
import { startDiskGuard } from '../storage/disk-guard.js';
import { watchFdPressure } from '../http/fd-pressure.js';
import { localStreamStore } from '../stream/stream-store.js';
import { createStreams } from '../stream/streams.js';
import type { Streams } from '../stream/streams.js';
import type { Logger } from '../telemetry/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { ScrapeCoalescer } from '../telemetry/scrape-coalescer.js';
import { defaultGroupCount } from '../context/routing.js';
import type { Readiness } from '../api/service.js';
import { createTokenEstimator } from '../tokens/create-token-estimator.js';
import type { TokenEstimator } from '../tokens/types.js';
import { withFsyncFault } from './fault-injection.js';
import { createNodeArchive, type NodeArchive } from '../../archiver/index.js';

export interface RunningNode {
  readonly nodeId: string;
  readonly httpPort: number;
  readonly raftPort: number;
  /**
   * Graceful stop (README "Shutting down"): not ready, new requests refused, leadership handed
   * away, requests in flight finished, the archiver flushed (bounded), then HTTP, the Raft loop,
   * gRPC and the store close. Idempotent.
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
  // TLS files are checked before anything opens (a bad one is a configuration error).
  const tls = loadNodeTls(config.tlsDir, clustered);
  if (clustered && config.clusterSecret === undefined) {
    // An open Raft (and forwarding) port is a write path into every context: no silent fallback.
    throw new ConfigError(
      'FASTPACA_CLUSTER_SEED is set but FASTPACA_CLUSTER_SECRET (--cluster-secret) is not: set the same ' +
        'secret (16+ characters) on every node so they can authenticate each other',
      { option: 'clusterSecret' },
    );
  }
  await mkdir(config.dataDir, { recursive: true });
  await refuseUnfinishedRestore(config.dataDir);
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
    const fds = await watchFdPressure({ reserve: config.httpFdReserve, logger: log });
    closers.push(async () => fds.stop());
    const metrics = createMetrics({ defaultLabels: { node: nodeId } });
    // The tokenizer workers load their BPE tables (most of a second, on another core) while this
    // thread opens the store, recovers the Raft groups and starts HTTP: a cold start pays for the
    // longer of the two instead of their sum. The node is not ready until they are loaded (see
    // readiness), and its start fails if they fail to load (awaited at the end).
    const estimatorStarting = createTokenEstimator(config.tokenEstimator, {
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
    // Handled at once (a start that fails is reported by that await, never as an unhandled
    // rejection meanwhile), and closed also when a later step of the start fails.
    let estimatorLoaded = false;
    const estimatorStarted = estimatorStarting.then(
      (started) => {
        estimatorLoaded = true;
        return started;
      },
      () => undefined,
    );
    closers.push(async () => (await estimatorStarted)?.close());
    // What the service counts with: a request that needs counts before the workers are loaded waits
    // for them (meanwhile bounded by the gateway's in-flight limits, then by the pool's queue).
    const estimator: TokenEstimator = {
      name: config.tokenEstimator,
      countParts: async (parts) => (await estimatorStarting).countParts(parts),
      close: async () => (await estimatorStarted)?.close(),
    };

    // withFsyncFault: a test-only fault hook, off unless FASTPACA_FAULT_FSYNC_FAIL_AFTER is set.
    // A crash can leave the write it interrupted torn at the end of LevelDB's log, which LevelDB
    // drops on open without a word. Say so first: it was never acknowledged (answers follow fsync).
    const storeDir = join(config.dataDir, storeDirName);
    const tail = await inspectNewestLog(storeDir);
    if (tail?.problem !== undefined) {
      log.warn(
        {
          type: 'torn_log_tail',
          file: tail.file,
          problem: tail.problem,
          droppedBytes: tail.bytes - tail.validBytes,
        },
        'the newest store log ends in an incomplete write (a crash interrupted it); LevelDB drops it on open, and no acknowledged write can be in it',
      );
    }
    const store = withFsyncFault(await openLevelStore(storeDir));
    closers.push(() => store.close());

    // Filled once the service exists; until then no subscriber exists to hear an event.
    const live: { streams?: Streams } = {};
    const stateMachine = new ContextStateMachine({
      // Live streams hear every applied event; the archiver notes what it must write (it is built
      // right below; nothing is applied before the Raft host starts).
      onEvent: (event) => {
        live.streams?.hub.onApplied(event);
        archive?.noteEvent(event);
      },
      onRestored: (group) => live.streams?.hub.onRestored(group),
      cacheContextsMax: config.cacheContextsMax,
      cacheBytesMax: config.cacheBytesMax,
      readPageBytesMax: config.readPageBytesMax,
      // Every replica refuses the same entries; each says so once, when it applies one.
      onRefusedEntry: ({ group, index, reason, error }) =>
        log.error({ group, index, reason, err: error }, 'committed entry refused'),
    });
    const archive: NodeArchive | undefined = createNodeArchive({
      config,
      nodeId,
      stateMachine,
      metrics,
      log,
    });
    const incarnation = clustered ? await resolveIncarnation(config.dataDir) : undefined;
    // The data directory's generation (cluster/membership/generation.ts): a stale copy is refused.
    let generation = clustered ? await readGeneration(config.dataDir) : 0;
    // No generation is reported before the check below passed: a refused stale copy, restarted
    // again and again, must never climb past the cluster's record by reporting.
    let generationChecked = false;
    const wiring =
      incarnation === undefined
        ? undefined
        : prepareCluster({
            config,
            tls: tls?.peer,
            nodeId,
            incarnation,
            groupCount: defaultGroupCount,
            logger: log,
            generation: {
              advance: async () => {
                if (!generationChecked) throw new Error('the stale-copy check has not passed yet');
                generation += 1;
                await writeGeneration(config.dataDir, generation);
                return generation;
              },
            },
          });
    const transport = createGrpcTransport({
      nodeId,
      listenHost: config.host,
      listenPort: config.raftPort,
      // Alone and without a configured secret, a random one nobody else knows: the Raft port then
      // refuses every caller, instead of being an unauthenticated write path into every context.
      clusterSecret: config.clusterSecret ?? randomBytes(32).toString('base64url'),
      tls: tls?.peer,
      onLinkError: (peer, error) => log.warn({ peer, err: error }, 'raft link error'),
      ...(wiring === undefined ? {} : { extraServices: wiring.extraServices }),
    });
    closers.push(() => transport.stop());

    const fatal =
      hooks.onFatal ??
      ((error: Error): void => {
        // Out of descriptors: the fd-pressure watch could not shed connections fast enough (silent
        // ones hold theirs for uWS's 10 s). Name the fix, not only the symptom.
        const outOfFds = /too many open files|EMFILE/i.test(error.message);
        log.fatal(
          { err: error, ...(outOfFds ? { type: 'out_of_file_descriptors' } : {}) },
          outOfFds
            ? 'raft storage failed: the process ran out of file descriptors (raise ulimit -n, or put a ' +
                'proxy with a connection limit in front); exiting'
            : 'raft storage failed; exiting',
        );
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
      pipelineWrites: config.raftPipelineWrites,
      limits: hostLimits(config),
      onFatal: fatal,
      // Forwarded writes are proposed here too: a leader low on disk refuses them (503).
      refuseProposals: () => disk.refusal(),
      // A follower low on disk drops replicated entries (its leader resends later) rather than
      // writing until LevelDB fails, which would crash it.
      refuseEntries: () => disk.refusal(),
      ...(wiring === undefined ? {} : { acceptUnknownGroup: wiring.acceptUnknownGroup }),
      timers: {
        turn: () => metrics.raft.turnDurationSeconds.startTimer(),
        syncedWrite: () => metrics.raft.fsyncDurationSeconds.startTimer(),
      },
    });
    closers.push(() => host.close());
    // What recovery found, before anything (formation, the loop) can change it: the stale-copy
    // check compares it with what the leaders saw this node acknowledge.
    const recovered = clustered ? recoveredLogs(host) : new Map<number, RecoveredLog>();

    // Alone, the node is its own cluster at once; in a cluster, formation bootstraps the groups
    // once the peers are known (a restart recovers them from disk instead).
    const cluster = wiring?.attach(host, transport, (group) => host.forgetGroup(group));
    if (cluster === undefined) {
      // All at once: each is a synced write, and LevelDB commits concurrent writers together (a
      // handful of fsyncs instead of 256 in a row, which took 1-2 s of a first start on a busy disk).
      // A restart recovered its groups above; bootstrapGroup leaves a hosted group alone.
      const groups = Array.from({ length: defaultGroupCount }, (_, group) => group);
      await Promise.all(groups.map((group) => host.bootstrapGroup(group, [nodeId])));
    }
    // In a cluster the loop starts only once the data directory is known not to be a stale copy:
    // until then its replicas neither vote nor acknowledge anything.
    let loop: HostLoop | undefined;
    const startLoop = (): void => {
      loop = startHostLoop(host, { tickMs: config.raftTickMs });
    };
    closers.push(async () => loop?.stop());
    if (cluster === undefined) startLoop();
    // Closed before the loop stops (closers run in reverse): no formation or balancing on a closing host.
    if (cluster !== undefined) closers.push(() => cluster.close());

    const consensus =
      cluster?.consensus ??
      createLocalConsensus(host, {
        proposeTimeoutMs: config.raftProposalTimeoutMs,
        readTimeoutMs: config.raftProposalTimeoutMs,
      });
    // The same limits for the gateway and the service, so a body the gateway checked meets the service's rules.
    const requestLimits = { ...defaultRequestLimits, bodyBytesMax: config.bodyLimitBytes };
    const localService = createContextService({
      consensus,
      stateMachine,
      estimator,
      clock: () => new Date(),
      groupCount: defaultGroupCount,
      metrics,
      requestLimits,
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
    const liveStreams = createStreams({
      store: localStreamStore({
        stateMachine,
        groupKv: (group) => host.groupKv(group),
        groupCount: defaultGroupCount,
        ...(archive === undefined ? {} : { archive: archive.reader }),
      }),
      service,
      connectionsMax: config.streamMaxConnections,
      pingIntervalMs: config.streamPingIntervalMs,
      idleTimeoutMs: config.streamIdleTimeoutMs,
      bufferBytesMax: config.streamBufferBytesMax,
      metrics,
      logger: log,
      ...(cluster === undefined
        ? {}
        : { cluster: { localService, remoteStreams: (target) => cluster.remoteStreams(target) } }),
    });
    live.streams = liveStreams;

    let closing = false;
    const readiness = (): Readiness => {
      if (closing) return { ready: false, reason: 'shutting down' };
      if (!estimatorLoaded) return { ready: false, reason: 'token counting is loading' };
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
    // At most ten renders a second, however many scrapes (scrape-coalescer.ts).
    const scrapes = new ScrapeCoalescer({
      minIntervalMs: metricsRenderIntervalMs,
      render: async () => {
        syncRaftCounters(host.stats());
        return { contentType: metrics.contentType, body: await metrics.render() };
      },
    });
    const http = await startHttpServer({
      host: config.host,
      port: config.port,
      service,
      readiness,
      metrics: () => scrapes.scrape(),
      apiKeys: config.apiKeys,
      protectedMode: config.protectedMode,
      ratePerKey: config.ratePerKey,
      rateBurst: config.rateBurst,
      limits: requestLimits,
      tls: tls?.http,
      refuseWrites: () => disk.refusal(),
      fdPressed: () => fds.pressed(),
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
      // The whole close is bounded by shutdownTimeoutMs (the CLI enforces it), shared out below.
      closeTimeoutMs: shutdownBudgets(config.shutdownTimeoutMs).inflightMs,
      extend: (app, gateway) => {
        liveStreams.register(app, gateway);
        registerSnapshotRoute(app, gateway, { store, nodeId, clustered, logger: log });
        cluster?.extendHttp(app, gateway);
      },
    });
    closers.push(() => http.close());
    // Runs first on close (closers run in reverse): every stream gets 1001 before HTTP drains.
    closers.push(async () => liveStreams.close());
    // Loading since the start (above). A failure to load fails the start here, before this node
    // announces itself to any peer (formation below).
    await estimatorStarting;
    // Read before formation may bootstrap groups: whether the directory came with replicas.
    const holdsReplicas = host.groups().length > 0;
    // Peers find this node through its HTTP hello, so probing starts once that answers. Formation
    // may learn its peers meanwhile; nothing it proposes is stepped before the loop runs.
    cluster?.start(http.port);
    if (incarnation !== undefined) {
      const startGeneration = generation;
      const checks = {
        config,
        nodeId,
        incarnation,
        generation: startGeneration,
        holdsReplicas,
        tls: tls?.peer,
        logger: log,
      };
      // Peers answer hello (with their member lists) whether or not their loops run, so a whole
      // cluster starting at once cannot wait on itself here.
      const checked = await runStartChecks(host, () => recovered, checks, false);
      // No peer answered: nothing above was checked, and the fences are unknown. A directory with
      // replicas may be an older copy that forgot votes and entries, so its replicas hold their votes
      // (no vote, no campaign) until a peer answers the same checks, asked again in the background.
      // A peer that cannot answer is seldom one whose votes could make a quorum with this node's.
      // Groups whose only voter is this node are never held (RawNode.holdVotes).
      const votesMatter = host
        .groups()
        .some((group) => host.status(group)?.conf.voters.some((voter) => voter !== nodeId) === true);
      const held = !checked && holdsReplicas && votesMatter;
      if (held) {
        host.holdVotes(true);
        log.warn(
          { type: 'votes_held' },
          "no peer answered the start checks: this node's replicas hold their votes until one does",
        );
      }
      // Checked: a new generation (written before it is ever reported). Unchecked, neither until a
      // peer answered: a record made meanwhile could let a stale copy pass the late check.
      const passChecks = async (): Promise<void> => {
        generation += 1;
        await writeGeneration(config.dataDir, generation);
        generationChecked = true;
      };
      if (!held) await passChecks();
      startLoop();
      if (held) {
        void recheckUntilAnswered(host, checks, () => closing, log)
          .then(async (outcome) => {
            if (outcome !== 'checked') return;
            await passChecks();
            host.holdVotes(false);
            log.info({ type: 'votes_released' }, 'a peer answered the start checks: votes released');
          })
          .catch((error: unknown) => {
            // A stale copy found late is refused as it would have been at start (exit 2, the fix
            // named); so is a generation that cannot be written.
            const refusal = asError(error);
            log.fatal({ type: 'stale_copy_refused', err: refusal }, refusal.message);
            if (hooks.onFatal !== undefined) hooks.onFatal(refusal);
            else process.exit(2);
          });
      }
    }

    log.info(
      { httpPort: http.port, raftPort: transport.port(), dataDir: config.dataDir, groups: defaultGroupCount },
      'fastpaca node started',
    );
    const shutdown = async (): Promise<void> => {
      const budgets = shutdownBudgets(config.shutdownTimeoutMs);
      // 1. Not ready (load balancers and Kubernetes stop sending), and new /v1 requests get 503
      //    shutting_down with Retry-After, so clients retry on another node.
      closing = true;
      http.drain();
      log.info({ type: 'shutdown_draining' }, 'not ready; refusing new requests');
      // 2. Every group this node leads gets another leader, so nobody waits out an election.
      if (cluster !== undefined) {
        const handoff = await cluster.handOffLeadership(budgets.handoffMs, config.shutdownTimeoutMs);
        const message =
          handoff.stillLed.length === 0
            ? 'leadership handed away'
            : `still leading ${handoff.stillLed.length} groups (no other voter took them in time)`;
        log.info(
          { type: 'shutdown_handoff', stillLed: handoff.stillLed.length, ms: handoff.elapsedMs },
          message,
        );
      }
      // 3. Live streams close with 1001 (going away): subscribers reconnect to another node with
      //    their cursors.
      liveStreams.close();
      // 4. Requests in flight finish (bounded by budgets.inflightMs), then every connection closes.
      await http.close();
      // 5. closeAll runs the closers newest first: the archiver flushes what it holds (bounded; its
      //    acks still need Raft), then the cluster rounds, the Raft loop (after its turn), the
      //    host, gRPC and LevelDB close.
      await closeAll();
    };
    let closed: Promise<void> | undefined;
    return {
      nodeId,
      httpPort: http.port,
      raftPort: transport.port(),
      close: () => {
        closed ??= shutdown().then(() => log.info('fastpaca node stopped'));
        return closed;
      },
      flushArchive: async (deadlineMs) => archive?.flush(deadlineMs),
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
};

/** Renders of /metrics start at most this often; a scrape waits at most this long for a fresh one. */
const metricsRenderIntervalMs = 100;

/** A snapshot restore into this directory that did not finish leaves its marker: never serve that. */
const refuseUnfinishedRestore = async (dataDir: string): Promise<void> => {
  const marker = join(dataDir, restoreMarkerFileName);
  if (
    await stat(marker).then(
      () => true,
      () => false,
    )
  ) {
    throw new ConfigError(
      `${marker} exists: a snapshot restore into ${dataDir} did not finish; run \`fastpaca snapshot restore <file> --data-dir ${dataDir} --force\` again`,
      { option: 'dataDir' },
    );
  }
};

/**
 * How a graceful shutdown spends shutdown_timeout_ms: up to 40 % handing leadership away, up to 30 %
 * waiting for requests in flight, and the rest (at least 30 %) for the Raft loop, gRPC and the store.
 */
export const shutdownBudgets = (timeoutMs: number): { handoffMs: number; inflightMs: number } => ({
  handoffMs: Math.floor(timeoutMs * 0.4),
  inflightMs: Math.max(1, Math.floor(timeoutMs * 0.3)),
});

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
    metrics.raft.entriesRefusedTotal.inc(grown('entriesRefused'));
    last = stats;
  };
};
