// Where a replica comes from, and where it goes: recovered from the store at open, bootstrapped with a
// fixed membership, created empty for an unknown group (its leader then sends a snapshot), or deleted
// when its group removed it. Everything here builds a group's initial state (GroupInit) or its store
// ops; the host registers the replica.

import type { BatchOp, KvStore, RaftHostOptions } from '../api.js';
import { applyConfChange } from '../core/conf.js';
import { fail } from '../core/invariant.js';
import { RawNode } from '../core/raw-node.js';
import {
  EntryKind,
  decodeConfChange,
  type ConfState,
  type Entry,
  type GroupId,
  type HardState,
  type Index,
  type NodeId,
  type RaftConfig,
  type SnapshotMeta,
} from '../core/types.js';
import { GroupLogIndex, recoverGroupLog } from '../storage/group-log.js';
import {
  KeyKind,
  appliedStateKey,
  groupSpacePrefix,
  hardStateKey,
  keyGroup,
  kindRange,
  logBatchFirstIndex,
  logMetaKey,
  prefixRange,
} from '../storage/keys.js';
import {
  decodeAppliedState,
  decodeHardState,
  decodeSnapshotMeta,
  encodeAppliedState,
  encodeHardState,
  encodeSnapshotMeta,
  type AppliedState,
} from '../storage/record-codec.js';
import type { GroupInit } from './replica.js';
import { seededRandom } from '../core/random.js';

export const EMPTY_CONF: ConfState = { voters: [], learners: [] };

// ---------------------------------------------------------------------------------------------
// Seeded per-group randomness: one stream per group, independent of the order groups are created in.

const mix32 = (value: number): number => {
  let x = value | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
};

export type CoreOptions = Pick<
  RaftHostOptions<unknown>,
  'nodeId' | 'electionTicks' | 'heartbeatTicks' | 'preVote' | 'checkQuorum' | 'limits'
>;

/** The core configuration of one group; `hostSeed` seeds its randomness. */
export const coreConfig = (options: CoreOptions, hostSeed: number, group: GroupId): RaftConfig => ({
  id: options.nodeId,
  electionTicks: options.electionTicks,
  heartbeatTicks: options.heartbeatTicks,
  random: seededRandom(mix32(hostSeed ^ Math.imul(group + 1, 0x9e3779b9))),
  preVote: options.preVote,
  checkQuorum: options.checkQuorum,
  inflightMsgsMax: options.limits.inflightMsgsMax,
  inflightBytesMax: options.limits.inflightBytesMax,
  msgBytesMax: options.limits.msgBytesMax,
  uncommittedBytesMax: options.limits.uncommittedBytesMax,
});

// ---------------------------------------------------------------------------------------------
// Recovery at open.

/** Rebuilds every group found in the store (a group exists iff it has a hard state) and adds it. */
export const recoverGroups = async (
  store: KvStore,
  config: (group: GroupId) => RaftConfig,
  add: (group: GroupId, init: GroupInit) => void,
): Promise<void> => {
  const hardStates = new Map<GroupId, HardState>();
  for await (const [key, value] of store.iterate(kindRange(KeyKind.HardState))) {
    hardStates.set(keyGroup(key), decodeHardState(value));
  }
  // Every read below goes to LevelDB's thread pool: issued together (one get per group, and the two
  // scans), not one after another, so a start does not wait out hundreds of round trips in a row
  // (cold start: about half a second of 256 sequential gets on a loaded machine).
  const metas = new Map<GroupId, SnapshotMeta>();
  const batches = new Map<GroupId, [Index, Uint8Array][]>();
  const [applied] = await Promise.all([
    Promise.all(
      [...hardStates.keys()].map(async (group) => {
        const stored = await store.get(appliedStateKey(group));
        return stored === undefined ? undefined : decodeAppliedState(stored);
      }),
    ),
    (async () => {
      for await (const [key, value] of store.iterate(kindRange(KeyKind.LogMeta))) {
        metas.set(keyGroup(key), decodeSnapshotMeta(value, `log meta of group ${keyGroup(key)}`));
      }
    })(),
    (async () => {
      for await (const [key, value] of store.iterate(kindRange(KeyKind.LogBatch))) {
        const group = keyGroup(key);
        let list = batches.get(group);
        if (list === undefined) {
          list = [];
          batches.set(group, list);
        }
        list.push([logBatchFirstIndex(key), value]);
      }
    })(),
  ]);
  let position = 0;
  for (const [group, hardState] of hardStates) {
    const stored = applied[position++];
    add(
      group,
      recoverGroup(config(group), group, hardState, metas.get(group), batches.get(group) ?? [], stored),
    );
  }
};

const recoverGroup = (
  config: RaftConfig,
  group: GroupId,
  hardState: HardState,
  meta: SnapshotMeta | undefined,
  batches: readonly [Index, Uint8Array][],
  stored: AppliedState | undefined,
): GroupInit => {
  const compaction = meta ?? { index: 0, term: 0, conf: EMPTY_CONF };
  const { entries, index: log } = recoverGroupLog(group, batches, compaction);
  const applied = stored ?? compaction;
  if (applied.index < compaction.index) {
    fail(`group ${group}: applied ${applied.index} is behind compaction ${compaction.index}`);
  }
  const confHistory = replayConfChanges(compaction.conf, entries, applied.index);
  const core = new RawNode(config, {
    // Commit-only hard states are not written: what this node applied was committed.
    hardState: { ...hardState, commit: Math.max(hardState.commit, applied.index) },
    snapshot: compaction,
    entries,
    applied: applied.index,
    conf: applied.conf,
  });
  return {
    core,
    log,
    compaction,
    applied,
    confHistory,
    durable: { term: hardState.term, vote: hardState.vote },
  };
};

/** The conf after each Conf entry up to `applied`, starting from the compaction point's conf. */
const replayConfChanges = (
  start: ConfState,
  entries: readonly Entry[],
  applied: Index,
): { index: Index; conf: ConfState }[] => {
  const history: { index: Index; conf: ConfState }[] = [];
  let conf = start;
  for (const entry of entries) {
    if (entry.index > applied) break;
    if (entry.kind !== EntryKind.Conf) continue;
    conf = applyConfChange(conf, decodeConfChange(entry.data));
    history.push({ index: entry.index, conf });
  }
  return history;
};

// ---------------------------------------------------------------------------------------------
// Bootstrap, creation from nothing, deletion.

export interface BootstrapPoint {
  readonly conf: ConfState;
  readonly meta: SnapshotMeta;
  readonly hardState: HardState;
}

/** Writes (synced) the starting point of a group bootstrapped with `voters`. */
export const writeBootstrapPoint = async (
  store: KvStore,
  group: GroupId,
  voters: readonly NodeId[],
): Promise<BootstrapPoint> => {
  // Every bootstrapping node writes the same point, so a replica created later from nothing (index 0)
  // always needs, and gets, a snapshot that carries the membership.
  const conf: ConfState = { voters: [...voters], learners: [] };
  const meta: SnapshotMeta = { index: 1, term: 1, conf };
  const hardState: HardState = { term: 1, vote: null, commit: 1 };
  await store.write(
    [
      { type: 'put', key: hardStateKey(group), value: encodeHardState(hardState) },
      { type: 'put', key: logMetaKey(group), value: encodeSnapshotMeta(meta) },
      { type: 'put', key: appliedStateKey(group), value: encodeAppliedState(meta) },
    ],
    { sync: true },
  );
  return { conf, meta, hardState };
};

/** A replica at its bootstrap point. */
export const bootstrappedGroup = (
  config: RaftConfig,
  group: GroupId,
  { conf, meta, hardState }: BootstrapPoint,
): GroupInit => {
  const core = new RawNode(config, {
    hardState,
    snapshot: meta,
    entries: [],
    applied: 1,
    conf,
  });
  return {
    core,
    log: new GroupLogIndex(group),
    compaction: meta,
    applied: meta,
    confHistory: [],
    durable: { term: hardState.term, vote: hardState.vote },
  };
};

/** A replica created from nothing: empty membership at index 0; the leader will send a snapshot. */
export const emptyGroup = (config: RaftConfig, group: GroupId): GroupInit => {
  const compaction: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF };
  const core = new RawNode(config, {
    hardState: { term: 0, vote: null, commit: 0 },
    snapshot: compaction,
    entries: [],
    applied: 0,
    conf: EMPTY_CONF,
  });
  return {
    core,
    log: new GroupLogIndex(group),
    compaction,
    applied: compaction,
    confHistory: [],
    durable: { term: 0, vote: null },
  };
};

/**
 * The ops that delete everything of a group. The hard state goes in the same write as the rest:
 * recovery only knows groups that have one.
 */
export const deleteGroupOps = async (store: KvStore, group: GroupId): Promise<BatchOp[]> => {
  const ops: BatchOp[] = [
    { type: 'del', key: hardStateKey(group) },
    { type: 'del', key: logMetaKey(group) },
  ];
  const logPrefix = Uint8Array.of(KeyKind.LogBatch, group >>> 8, group & 0xff);
  for (const range of [prefixRange(logPrefix), prefixRange(groupSpacePrefix(group))]) {
    for await (const [key] of store.iterate(range)) ops.push({ type: 'del', key });
  }
  return ops;
};
