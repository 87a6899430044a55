// Log compaction: a group's log lives in memory (and in the store), so once enough of it has applied
// durably it is cut down, by entry count and by bytes. It runs between turns' Readys, on the groups
// whose applied index just became durable, and queues its store ops for the next write (WriteBatch).
// A leader keeps what a healthy follower still needs; one lagging further gets a snapshot instead.

import type { BatchOp, RaftHostOptions } from '../api.js';
import type { Index, SnapshotMeta } from '../core/types.js';
import { logMetaKey } from '../storage/keys.js';
import { encodeSnapshotMeta } from '../storage/record-codec.js';
import type { GroupReplica } from './replica.js';

/**
 * Applied entries a lone-member group keeps in memory (and in its stored log) before compacting:
 * nobody will ask for them, so only a small batch, to keep compaction writes rare.
 */
const LONE_LOG_RETAIN_ENTRIES = 64;
/** Default of limits.logRetainBytes. */
const LOG_RETAIN_BYTES_DEFAULT = 4 * 1024 * 1024;

export type CompactionPolicy = Pick<RaftHostOptions<unknown>, 'nodeId' | 'limits'>;

/**
 * Once the durable applied index is more than `logRetainEntries` past the compaction point, compact to
 * half that distance behind it, but not past a healthy follower that is within reach of the log
 * (one lagging further gets a snapshot anyway). Compaction ops go to `logOps`; true if it compacted.
 */
export const maybeCompact = <Result>(
  replica: GroupReplica<Result>,
  policy: CompactionPolicy,
  logOps: BatchOp[],
): boolean => {
  const { limits } = policy;
  // A lone member's log serves no follower: keep only a small batch of applied entries in memory.
  const retain = replica.isLoneMember(policy.nodeId)
    ? Math.min(LONE_LOG_RETAIN_ENTRIES, limits.logRetainEntries)
    : limits.logRetainEntries;
  const durable = replica.persistedApplied;
  const retainBytes = limits.logRetainBytes ?? LOG_RETAIN_BYTES_DEFAULT;
  // The log lives in memory: large entries are compacted by their bytes, not only by their count.
  const overBytes = replica.logBytes > retainBytes;
  if (!overBytes && (durable - replica.compaction.index <= retain || durable < replica.nextCompactionCheck))
    return false;
  let target = durable - Math.floor(retain / 2);
  if (replica.isLeader) target = Math.min(target, slowestHealthyMatch(replica, policy, durable - retain));
  if (overBytes) target = Math.max(target, bytesTarget(replica, policy, durable, retainBytes));
  const term = replica.core.termAt(target);
  if (target <= replica.compaction.index || term === undefined) {
    replica.nextCompactionCheck = durable + Math.max(1, Math.floor(retain / 4));
    return false;
  }
  const meta: SnapshotMeta = { index: target, term, conf: replica.confAt(target) };
  replica.log.compact(target, logOps);
  logOps.push({ type: 'put', key: logMetaKey(replica.group), value: encodeSnapshotMeta(meta) });
  replica.logBytes -= replica.core.logBytesBetween(replica.compaction.index, target);
  replica.core.compact(target, term, meta.conf);
  replica.compaction = meta;
  replica.confHistory = replica.confHistory.filter((change) => change.index > target);
  return true;
};

/**
 * Where to compact a log over its byte budget: down to half the budget, but for a healthy follower
 * still catching up (the inflight window) keep up to the whole budget; one further behind than that
 * gets a snapshot.
 */
const bytesTarget = <Result>(
  replica: GroupReplica<Result>,
  policy: CompactionPolicy,
  durable: Index,
  retainBytes: number,
): Index => {
  const soft = replica.core.indexKeepingBytes(durable, Math.floor(retainBytes / 2));
  const hard = replica.core.indexKeepingBytes(durable, retainBytes);
  if (!replica.isLeader) return soft;
  return Math.max(hard, Math.min(soft, slowestHealthyMatch(replica, policy, hard)));
};

const slowestHealthyMatch = <Result>(
  replica: GroupReplica<Result>,
  policy: CompactionPolicy,
  reachableFrom: Index,
): Index => {
  let slowest = Number.MAX_SAFE_INTEGER;
  const progress = replica.core.status().progress ?? {};
  for (const [peer, state] of Object.entries(progress)) {
    if (peer === policy.nodeId || !state.recentActive || state.match < reachableFrom) continue;
    slowest = Math.min(slowest, state.match);
  }
  return slowest;
};
