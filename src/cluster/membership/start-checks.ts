// The start checks of a cluster node whose data directory holds replicas, run against its peers
// before its Raft loop runs: the generation (generation.ts) and the leaders' progress
// (acknowledged-entries.ts) refuse a stale copy (ConfigError, exit 2), and the peers' answers fence
// the votes a copy may have forgotten (RawNode.fenceVotes, RawNode.fenceLog). A start that no peer
// answered holds its replicas' votes (RawNode.holdVotes) and asks again in the background until one
// does (recheckUntilAnswered).

import { setTimeout as sleep } from 'node:timers/promises';

import type { RaftHost } from '../../../raft/index.js';
import type { PeerTls } from '../../../net/grpc.js';
import type { Config } from '../../config/config.js';
import { ConfigError } from '../../config/config-error.js';
import { asError } from '../../context/apply-guard.js';
import type { Logger } from '../../telemetry/logger.js';
import type { AcknowledgedAnswer, PeerAddress, RecoveredLog } from './acknowledged-entries.js';
import {
  askAcknowledged,
  findForgottenEntries,
  forgottenEntriesError,
  logFences,
  recoveredLogs,
  voteFences,
} from './acknowledged-entries.js';
import { foreignReplicasError, recordedGeneration, staleCopyError } from './generation.js';

/** What the checks act on: the fences go to the host, the logs come from it when run again. */
export type CheckedHost = Pick<RaftHost<unknown>, 'fenceVotes' | 'fenceLog' | 'groups' | 'status'>;

/** How long a starting cluster node waits for its peers' member lists before starting unchecked. */
const staleCheckWaitMs = 5_000;
/**
 * One peer call of the start checks. A loaded peer's answer (a turn of its loop can take a second
 * under overload) is as good as a quick one, so a call may take half the wait: two tries fit.
 */
const staleCheckCallMs = staleCheckWaitMs / 2;

export interface StartCheckOptions {
  readonly config: Config;
  readonly nodeId: string;
  readonly incarnation: string;
  /** The directory's generation when the node started. */
  readonly generation: number;
  /** The store holds replicas (a directory that has been used, or restored). */
  readonly holdsReplicas: boolean;
  readonly tls: PeerTls | undefined;
  readonly logger: Logger;
}

/**
 * The start checks against the peers (generation, acknowledged entries; both throw ConfigError for
 * a stale copy) and the fences their answers give. `logs` tells where the replicas stand: what
 * recovery found at start, or, run again while the loop runs, where they stand once the answers are
 * in (a leader's match never exceeds what this node held when the leader heard its acknowledgement,
 * and the log only grows from there). Returns whether any peer answered them (a peer that knows no
 * such check counts: it cannot tell more).
 */
export const runStartChecks = async (
  host: CheckedHost,
  logs: () => ReadonlyMap<number, RecoveredLog>,
  options: StartCheckOptions,
  quiet: boolean,
): Promise<boolean> => {
  const asked = await refuseStaleCopy({ ...options, quiet });
  // The generation cannot see a copy taken within one interval of the node's last moment; the
  // leaders' progress for this node can (acknowledged-entries.ts).
  if (!asked.knownIncarnation || logs().size === 0) return asked.answered > 0;
  const { answers, olderPeers, compared } = await refuseForgottenEntries({
    ...options,
    peers: asked.peers,
    recovered: logs,
    quiet,
  });
  applyFences(host, compared, answers, options.logger);
  return answers.length + olderPeers > 0;
};

/** Votes and entries the directory may have forgotten (a restored copy) are fenced (RawNode). */
const applyFences = (
  host: CheckedHost,
  logs: ReadonlyMap<number, RecoveredLog>,
  answers: readonly AcknowledgedAnswer[],
  logger: Logger,
): void => {
  // Each group grants no vote up to the highest term its peers hold (RawNode.fenceVotes).
  const fences = voteFences(logs, answers);
  for (const [group, term] of fences) host.fenceVotes(group, term);
  if (fences.size > 0)
    logger.info({ type: 'vote_fence', groups: fences.size }, "votes fenced up to the peers' terms");
  // No vote goes to a candidate lacking what the peers know committed (RawNode.fenceLog): a copy
  // that forgot entries it acknowledged, with a leader elected since, cannot elect one without them.
  const logFenced = logFences(logs, answers);
  for (const [group, entry] of logFenced) host.fenceLog(group, entry.index, entry.term);
  const behind = [...logFenced].filter(([group, entry]) => entry.index > (logs.get(group)?.lastIndex ?? 0));
  if (logFenced.size > 0)
    logger.info(
      { type: 'log_fence', groups: logFenced.size, behind: behind.length },
      behind.length > 0
        ? `votes fenced at the peers' commits; ${behind.length} groups lack committed entries and catch up from their leaders`
        : "votes fenced at the peers' commits",
    );
};

/** How often a node whose start checks went unanswered asks its peers again. */
const recheckIntervalMs = 1_000;

/**
 * Runs the start checks again until a peer answers ('checked') or the node closes ('closed'); a
 * stale copy found now rejects with the same ConfigError as at start. The replicas have run since,
 * so leaders' progress is compared with where they stand now: entries acknowledged again since
 * (re-sent by their leader) are no longer forgotten.
 */
export const recheckUntilAnswered = async (
  host: CheckedHost,
  options: StartCheckOptions,
  closing: () => boolean,
  logger: Logger,
): Promise<'checked' | 'closed'> => {
  for (;;) {
    await sleep(recheckIntervalMs);
    if (closing()) return 'closed';
    try {
      if (await runStartChecks(host, () => recoveredLogs(host), options, true)) return 'checked';
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      logger.warn({ type: 'start_recheck_failed', err: asError(error) }, 'asking the peers again failed');
    }
  }
};

/**
 * Asks the seed for the generation the cluster recorded from this incarnation and refuses to start
 * (ConfigError, exit 2) if this directory's is lower: it is an older copy (generation.ts).
 */
const refuseStaleCopy = async (
  options: StartCheckOptions & {
    /** No warning when no peer answers (asked again in the background). */
    readonly quiet: boolean;
  },
): Promise<{ knownIncarnation: boolean; peers: readonly PeerAddress[]; answered: number }> => {
  const { config } = options;
  const deadline = Date.now() + staleCheckWaitMs;
  let highest: number | undefined;
  let answered = 0;
  let knownIncarnation = false;
  const peers = new Map<string, PeerAddress>();
  for (;;) {
    const round = await recordedGeneration({
      seed: config.clusterSeed,
      clusterSecret: config.clusterSecret,
      tls: options.tls,
      nodeId: options.nodeId,
      incarnation: options.incarnation,
      timeoutMs: staleCheckCallMs,
    });
    answered = Math.max(answered, round.answered);
    knownIncarnation ||= round.knownIncarnation;
    for (const peer of round.peers) peers.set(peer.nodeId, peer);
    if (round.generation !== undefined) highest = Math.max(highest ?? 0, round.generation);
    if (highest !== undefined && highest > options.generation)
      throw staleCopyError(config.dataDir, options.nodeId, options.generation, highest);
    // An emptied directory under another incarnation holds nothing to vote with; it waits,
    // unready, as before (formation.ts). One that holds replicas is refused here.
    if (round.otherIncarnation && options.holdsReplicas)
      throw foreignReplicasError(config.dataDir, options.nodeId);
    // Every other seed entry answered (a seed may also name this node), or time is up.
    if (round.answered >= config.clusterSeed.length - 1 || Date.now() >= deadline) break;
    await sleep(250);
  }
  if (answered === 0 && !options.quiet) {
    options.logger.warn(
      { type: 'stale_check_skipped' },
      'no peer answered within 5 s: starting without checking that this data directory is not an older copy',
    );
  }
  return { knownIncarnation, peers: [...peers.values()], answered };
};

/**
 * Asks every peer that answered the generation check what its led groups' leaders saw this node
 * acknowledge, and refuses to start (ConfigError, exit 2) if the directory holds less in any group:
 * it forgot acknowledged entries (acknowledged-entries.ts). No answer proves nothing: it starts.
 */
const refuseForgottenEntries = async (options: {
  readonly config: Config;
  readonly nodeId: string;
  readonly peers: readonly PeerAddress[];
  /** Read once the answers are in. */
  readonly recovered: () => ReadonlyMap<number, RecoveredLog>;
  readonly tls: PeerTls | undefined;
  readonly logger: Logger;
  /** No warning when no peer answers (asked again in the background). */
  readonly quiet?: boolean;
}): Promise<{
  answers: readonly AcknowledgedAnswer[];
  olderPeers: number;
  /** The logs the answers were compared with. */
  compared: ReadonlyMap<number, RecoveredLog>;
}> => {
  const { config } = options;
  const { answers, problems, olderPeers } = await askAcknowledged(
    {
      peers: options.peers,
      nodeId: options.nodeId,
      clusterSecret: config.clusterSecret,
      tls: options.tls,
      deadline: Date.now() + staleCheckWaitMs,
      timeoutMs: staleCheckCallMs,
      retryMs: 250,
    },
    sleep,
  );
  const logs = options.recovered();
  const forgotten = findForgottenEntries(logs, answers);
  if (forgotten.length > 0) throw forgottenEntriesError(config.dataDir, options.nodeId, forgotten);
  if (answers.length === 0) {
    if (options.quiet !== true && olderPeers === 0)
      options.logger.warn(
        { type: 'acknowledged_check_skipped', problems },
        'no peer told what its leaders saw this node acknowledge: starting without that check',
      );
    return { answers, olderPeers, compared: logs };
  }
  const groupsCompared = answers.reduce(
    (sum, answer) => sum + [...answer.groups.keys()].filter((group) => logs.has(group)).length,
    0,
  );
  options.logger.info(
    { type: 'acknowledged_check', peers: answers.length, groupsCompared, problems },
    'no leader saw this node acknowledge an entry its data directory lacks',
  );
  return { answers, olderPeers, compared: logs };
};
