// The second stale-copy check: what the Raft leaders already know. A leader's progress for a
// follower (`match`) is the highest log index that follower acknowledged as durable: a follower
// answers an append only after its fsync (also with pipelined writes), so a directory that merely
// crashed always holds at least every index it ever acknowledged. If a leader's match for this node
// in some group is above the last index this directory holds for that group (recovery's lastIndex,
// which includes a compacted log's snapshot index), the directory has forgotten entries it
// acknowledged: an older copy (a volume snapshot taken moments before the node's last moment, which
// the generation check cannot see, generation.ts) or a disk that lied about a sync. It must not vote
// or acknowledge as this member, so the node refuses to start, before its Raft loop runs.
//
// Match can only prove staleness, never freshness: a leader elected while this node was away has
// match 0 for it, and a group nobody leads says nothing. So the check needs no quorum of answers; one
// leader's word is proof. Two guards keep that proof sound:
//   - The leader's term must be at least the term this directory recovered. Entries acknowledged to
//     a leader of term T can only be truncated on this node by a leader of a later term, which this
//     node would have persisted (it answers only after persisting the term). A deposed leader that
//     does not know it yet (partitioned, in a group of five) may still report a match the directory
//     rightly truncated since, and the directory's higher term tells us to ignore it.
//   - Only groups the directory holds are compared: a replica this node let go (moved away) may
//     linger in a leader's progress until that leader applies the change, and a directory without
//     the group forgot nothing it is about to answer for.
// A directory under an incarnation the cluster does not know (replaced, or a restored online
// snapshot) is the incarnation check's business (generation.ts): the leaders' match for this node id
// speaks of another directory, so this check runs only once a peer lists this incarnation.
//
// It runs once, at start: one request per peer (GET acknowledgedPath?node_id=), answered from the
// leaders' progress of the groups that peer leads; nothing on the write path.

import type { GroupId, Index, LogPosition, NodeId, Term } from '../../../raft/index.js';
import { isLaterPosition } from '../../../raft/index.js';
import type { ConsensusHost } from '../../../raft/index.js';
import { ConfigError } from '../../config/config-error.js';
import { joinHostPort } from './discovery.js';
import { acknowledgedPath, nodeIdPattern } from './internal-protocol.js';
import { callPeer } from './peer-http.js';
import type { PeerAuth } from './peer-http.js';

/** What a leader knows of one follower in one group. */
export interface AcknowledgedByLeader {
  readonly match: Index;
  /** The leader's term. */
  readonly term: Term;
}

/** One peer's answer: every group it leads in which the asked-for node has a progress. */
export interface AcknowledgedAnswer {
  /** The answering peer. */
  readonly nodeId: NodeId;
  readonly groups: ReadonlyMap<GroupId, AcknowledgedByLeader>;
  /** The term of every group the peer holds (empty from a peer of an earlier version). */
  readonly terms: ReadonlyMap<GroupId, Term>;
  /** The newest entry the peer knows committed, per group it holds (empty from an earlier version). */
  readonly commits: ReadonlyMap<GroupId, CommittedEntry>;
}

/** The newest entry a peer knows committed in a group. */
export type CommittedEntry = LogPosition;

/** What recovery found in this directory for one group, before the Raft loop ran. */
export interface RecoveredLog {
  /** The last index held (the snapshot index when the log after it is empty). */
  readonly lastIndex: Index;
  readonly term: Term;
}

/** A leader's word that the directory forgot entries it acknowledged. */
export interface ForgottenEntries {
  readonly group: GroupId;
  readonly leader: NodeId;
  readonly match: Index;
  readonly lastIndex: Index;
}

/** The leader side: this node's progress for `follower` in every group it leads. */
export const acknowledgedBy = (
  host: Pick<ConsensusHost, 'groups' | 'status'>,
  follower: NodeId,
): Map<GroupId, AcknowledgedByLeader> => {
  const answer = new Map<GroupId, AcknowledgedByLeader>();
  for (const group of host.groups()) {
    const status = host.status(group);
    const progress = status?.role === 'leader' ? status.progress?.[follower] : undefined;
    if (status === undefined || progress === undefined) continue;
    answer.set(group, { match: progress.match, term: status.term });
  }
  return answer;
};

/** The peer side: the term of every group this node holds (for the asking node's vote fences). */
export const termsHeld = (host: Pick<ConsensusHost, 'groups' | 'status'>): Map<GroupId, Term> =>
  new Map([...recoveredLogs(host)].map(([group, log]) => [group, log.term]));

/** The peer side: the newest entry this node knows committed in every group it holds (log fences). */
export const commitsHeld = (host: Pick<ConsensusHost, 'groups' | 'status'>): Map<GroupId, CommittedEntry> => {
  const commits = new Map<GroupId, CommittedEntry>();
  for (const group of host.groups()) {
    const status = host.status(group);
    if (status !== undefined && status.commit > 0)
      commits.set(group, { index: status.commit, term: status.commitTerm });
  }
  return commits;
};

/**
 * The log fences of a starting node (RawNode.fenceLog): for each group its directory holds, the newest
 * entry a peer that answered knows committed. A copy of the directory may have forgotten entries it
 * acknowledged, committed with that acknowledgement counted; the leader whose progress would show it
 * may be gone or new (a leader elected since has no progress for this node from before, so the check
 * of findForgottenEntries is blind to it). With the fence, the replica grants no vote to a candidate
 * lacking the entry, so the entry survives as long as one replica holding it does. The newest entry a
 * peer knows committed is the best bound its answer gives: a leader's commit is normally an entry of
 * its own term, which every later leader holds. A commit only silent peers know is not seen.
 */
export const logFences = (
  local: ReadonlyMap<GroupId, RecoveredLog>,
  answers: readonly AcknowledgedAnswer[],
): Map<GroupId, CommittedEntry> => {
  const fences = new Map<GroupId, CommittedEntry>();
  for (const answer of answers) {
    for (const [group, entry] of answer.commits) {
      if (!local.has(group)) continue;
      const held = fences.get(group);
      if (held === undefined || isLaterPosition(entry, held)) fences.set(group, entry);
    }
  }
  return fences;
};

/**
 * The vote fences of a starting node (RawNode.fenceVotes): for each group its directory holds, the
 * highest term a peer that answered holds, when that is at least the recovered term. A copy of the
 * directory may have forgotten a vote it cast; that vote went to a candidate of that term, which
 * holds the term since (terms never go back), or to this node's own campaign, which counts for no
 * one once the node restarted. So with every peer answering, no forgotten vote lies past the fence.
 * A term only a silent peer reached is not seen: the same limit as the check above, which no answer
 * can lift.
 */
export const voteFences = (
  local: ReadonlyMap<GroupId, RecoveredLog>,
  answers: readonly AcknowledgedAnswer[],
): Map<GroupId, Term> => {
  const fences = new Map<GroupId, Term>();
  for (const answer of answers) {
    for (const [group, term] of answer.terms) {
      const held = local.get(group);
      if (held === undefined || term < held.term) continue;
      fences.set(group, Math.max(fences.get(group) ?? 0, term));
    }
  }
  return fences;
};

/**
 * Each held group's last index and term: on a starting node, what recovery found (read before the
 * loop runs); on a peer, where its groups stand now (termsHeld).
 */
export const recoveredLogs = (host: Pick<ConsensusHost, 'groups' | 'status'>): Map<GroupId, RecoveredLog> => {
  const logs = new Map<GroupId, RecoveredLog>();
  for (const group of host.groups()) {
    const status = host.status(group);
    if (status !== undefined) logs.set(group, { lastIndex: status.lastIndex, term: status.term });
  }
  return logs;
};

/** Every leader's proof that the directory forgot acknowledged entries (empty: no proof). */
export const findForgottenEntries = (
  local: ReadonlyMap<GroupId, RecoveredLog>,
  answers: readonly AcknowledgedAnswer[],
): ForgottenEntries[] => {
  const forgotten: ForgottenEntries[] = [];
  for (const answer of answers) {
    for (const [group, known] of answer.groups) {
      const held = local.get(group);
      if (held === undefined || known.term < held.term) continue;
      if (known.match > held.lastIndex) {
        forgotten.push({ group, leader: answer.nodeId, match: known.match, lastIndex: held.lastIndex });
      }
    }
  }
  return forgotten.sort((a, b) => a.group - b.group);
};

export const acknowledgedBody = (answer: AcknowledgedAnswer): string =>
  JSON.stringify({
    node_id: answer.nodeId,
    groups: Object.fromEntries(answer.groups),
    terms: Object.fromEntries(answer.terms),
    commits: Object.fromEntries(answer.commits),
  });

const isIndex = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** Throws unless `text` is a well-formed answer. */
export const parseAcknowledged = (text: string): AcknowledgedAnswer => {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('answered with something that is not JSON');
  }
  const record = fieldsOf(value);
  const { node_id: nodeId, groups } = record;
  if (typeof nodeId !== 'string' || !nodeIdPattern.test(nodeId))
    throw new Error('answer without a valid node_id');
  if (typeof groups !== 'object' || groups === null) throw new Error('answer without groups');
  return {
    nodeId,
    groups: parseGroupMap(groups, 'group', (raw) => {
      const { match, term } = fieldsOf(raw);
      return isIndex(match) && isIndex(term) ? { match, term } : undefined;
    }),
    // Both optional: a peer of an earlier version sends neither (no fences, not an error).
    terms: parseGroupMap(record['terms'] === undefined ? {} : record['terms'], 'term', (raw) =>
      isIndex(raw) ? raw : undefined,
    ),
    commits: parseGroupMap(record['commits'] === undefined ? {} : record['commits'], 'commit', (raw) => {
      const { index, term } = fieldsOf(raw);
      return isIndex(index) && isIndex(term) ? { index, term } : undefined;
    }),
  };
};

const fieldsOf = (raw: unknown): Record<string, unknown> =>
  (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;

/** A JSON object keyed by group number, each value read by `read` (undefined: malformed). */
const parseGroupMap = <T>(
  value: unknown,
  what: string,
  read: (raw: unknown) => T | undefined,
): Map<GroupId, T> => {
  if (typeof value !== 'object' || value === null) throw new Error(`answer with malformed ${what}s`);
  const parsed = new Map<GroupId, T>();
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    const group = Number(key);
    const entry = /^\d+$/.test(key) && isIndex(group) ? read(raw) : undefined;
    if (entry === undefined) throw new Error(`answer with a malformed ${what} for ${JSON.stringify(key)}`);
    parsed.set(group, entry);
  }
  return parsed;
};

export interface PeerAddress {
  readonly nodeId: NodeId;
  readonly host: string;
  readonly httpPort: number;
}

export interface AskAcknowledgedOptions extends PeerAuth {
  readonly peers: readonly PeerAddress[];
  /** The node asking (whose acknowledgements the leaders report). */
  readonly nodeId: NodeId;
  /** Peers that have not answered are asked again until then (epoch ms). */
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly retryMs: number;
}

/**
 * Asks every peer once (again, until the deadline, if it failed) what it knows of `nodeId`.
 * `olderPeers` counts the peers that answered without the endpoint (an earlier version).
 */
export const askAcknowledged = async (
  options: AskAcknowledgedOptions,
  sleep: (ms: number) => Promise<unknown>,
): Promise<{ answers: AcknowledgedAnswer[]; problems: string[]; olderPeers: number }> => {
  const answers = new Map<NodeId, AcknowledgedAnswer>();
  const problems = new Map<NodeId, string>();
  // A peer of an earlier version (a rolling upgrade) has no such endpoint: asking again is no use.
  const cannotTell = new Set<NodeId>();
  const query = `${acknowledgedPath}?${new URLSearchParams({ node_id: options.nodeId }).toString()}`;
  for (;;) {
    const waiting = options.peers.filter(
      (peer) => !answers.has(peer.nodeId) && !cannotTell.has(peer.nodeId) && peer.nodeId !== options.nodeId,
    );
    await Promise.all(
      waiting.map(async (peer) => {
        const address = joinHostPort(peer.host, peer.httpPort);
        try {
          const response = await callPeer(options, address, query, { timeoutMs: options.timeoutMs });
          if (response.status === 404) cannotTell.add(peer.nodeId);
          if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
          const answer = parseAcknowledged(response.text);
          if (answer.nodeId !== peer.nodeId) throw new Error(`answered as ${answer.nodeId}`);
          answers.set(peer.nodeId, answer);
          problems.delete(peer.nodeId);
        } catch (error) {
          problems.set(peer.nodeId, `${address}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    const retry = [...problems.keys()].some((peer) => !cannotTell.has(peer));
    if (!retry || Date.now() + options.retryMs >= options.deadline) break;
    await sleep(options.retryMs);
  }
  return { answers: [...answers.values()], problems: [...problems.values()], olderPeers: cannotTell.size };
};

/** The refusal: which leader saw which acknowledgement the directory no longer holds, and the fix. */
export const forgottenEntriesError = (
  dataDir: string,
  nodeId: NodeId,
  forgotten: readonly ForgottenEntries[],
): ConfigError => {
  const first = forgotten[0];
  const example =
    first === undefined
      ? ''
      : ` (group ${first.group}: its leader ${first.leader} holds ${nodeId}'s acknowledgement of index ` +
        `${first.match}, the directory ends at ${first.lastIndex}` +
        (forgotten.length > 1 ? `; ${forgotten.length - 1} more groups alike)` : ')');
  return new ConfigError(
    `${dataDir} has forgotten log entries node ${nodeId} acknowledged as durable${example}: it is an older ` +
      `copy of the data directory (a restored backup or volume snapshot) or its disk lost synced writes, so ` +
      `it must not rejoin as ${nodeId}. Fix: start the node on its current data directory if it still ` +
      `exists; otherwise replace the member: run \`fastpaca cluster remove ${nodeId}\` (with at least ` +
      `three other active nodes) and start it with an empty data directory, so it joins as a new node and ` +
      `gets its replicas from the others`,
    { option: 'dataDir' },
  );
};
