// Stale copies of a data directory. The incarnation (config/node-name.ts) tells a replaced
// directory from the member's own, but not an *older copy* of the member's own: a restored backup or
// volume snapshot has the right incarnation and has forgotten the votes and log entries the member
// answered for since. Letting it vote, or count toward a quorum, with those promises forgotten
// could elect two leaders in one term or lose an acknowledged append.
//
// So the directory also holds a generation, a counter that only grows: at every start, and every
// `generationIntervalMs` while running, the node first persists generation g+1 in
// <data_dir>/generation (durably), then reports g+1 to the member list (the meta group), which keeps
// the highest one per incarnation. The record can therefore never exceed what the directory itself
// persisted: a node that merely crashed (at any point, even between the two steps) has a generation
// at least the recorded one. A copy taken earlier and restored has less once a later generation was
// recorded, and at start, before its Raft loop runs (so before it has voted or acknowledged
// anything), the node asks its peers for the record and refuses to start if its own is lower.
//
// What it cannot see: a copy taken less than about one interval before the node's last moment (no
// later generation was recorded yet), and a cold start of the whole cluster in which no peer
// answers within the check's wait (the node then starts unchecked, and says so).
//
// The first gap is closed by a second, independent check right after this one (still before the
// loop runs; acknowledged-entries.ts): the leaders' progress says which log index this node
// acknowledged as durable in each group they lead, and a directory holding less has forgotten
// acknowledged entries, however recent the copy. It needs a leader that kept leading since the
// node's last moment and saw it acknowledge something the copy lacks, so it sees a copy taken
// under writes, not one of an idle group; and it too proves nothing when no peer answers. So
// neither check covers a whole-cluster cold start, nor a recent copy of a node whose groups took no
// writes since (such a copy forgot no acknowledged entry; it may still have forgotten a vote).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { NodeId } from '../../../raft/index.js';
import type { SeedPeer } from '../../config/cluster-seed.js';
import { ConfigError } from '../../config/config-error.js';
import { writeDurably } from '../../config/node-name.js';
import type { PeerAddress } from './acknowledged-entries.js';
import { probeSeed } from './discovery.js';
import type { PeerTls } from '../../../net/grpc.js';

export const generationFileName = 'generation';
/** How often a running node records a new generation. */
export const generationIntervalMs = 5_000;

/** The directory's generation: 0 when it has none yet (a new directory, or one from before). */
export const readGeneration = async (dataDir: string): Promise<number> => {
  const path = join(dataDir, generationFileName);
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new ConfigError(`${path}: holds no valid generation (${JSON.stringify(text.slice(0, 40))})`, {
      option: 'dataDir',
    });
  }
  return value;
};

export const writeGeneration = (dataDir: string, generation: number): Promise<void> =>
  writeDurably(dataDir, join(dataDir, generationFileName), String(generation));

export interface RecordedGeneration {
  /** The highest generation any answering peer's member list records for this incarnation. */
  readonly generation: number | undefined;
  /** Peers (other than this node) that answered. */
  readonly answered: number;
  /** A peer lists this node as a current member under another incarnation. */
  readonly otherIncarnation: boolean;
  /** A peer lists this node under this incarnation: the cluster knows this directory. */
  readonly knownIncarnation: boolean;
  /** The peers that answered, where they answered (for the acknowledged-entries check). */
  readonly peers: readonly PeerAddress[];
}

/** Asks every seed address for its member list; the highest record for (nodeId, incarnation). */
export const recordedGeneration = async (options: {
  readonly seed: readonly SeedPeer[];
  readonly clusterSecret: string | undefined;
  readonly tls?: PeerTls | undefined;
  readonly nodeId: NodeId;
  readonly incarnation: string;
  readonly timeoutMs: number;
}): Promise<RecordedGeneration> => {
  const { members } = await probeSeed({
    seed: options.seed,
    clusterSecret: options.clusterSecret,
    tls: options.tls,
    timeoutMs: options.timeoutMs,
  });
  let generation: number | undefined;
  let answered = 0;
  let otherIncarnation = false;
  let knownIncarnation = false;
  const peers: PeerAddress[] = [];
  for (const peer of members) {
    if (peer.nodeId === options.nodeId) continue;
    answered += 1;
    peers.push({ nodeId: peer.nodeId, host: peer.host, httpPort: peer.httpPort });
    for (const member of peer.knownMembers ?? []) {
      if (member.node_id !== options.nodeId) continue;
      if (member.incarnation !== options.incarnation) {
        if (member.incarnation !== undefined && member.state !== 'removed') otherIncarnation = true;
        continue;
      }
      if (member.state !== 'removed') knownIncarnation = true;
      if (member.generation !== undefined) generation = Math.max(generation ?? 0, member.generation);
    }
  }
  return { generation, answered, otherIncarnation, knownIncarnation, peers };
};

/** The refusal a stale copy gets: what happened, why it matters, and how to fix it. */
export const staleCopyError = (
  dataDir: string,
  nodeId: NodeId,
  local: number,
  recorded: number,
): ConfigError =>
  new ConfigError(
    `${dataDir} is an older copy of node ${nodeId}'s data directory (generation ${local}; the cluster recorded ` +
      `${recorded} from it): a restored backup or volume snapshot. It has forgotten votes and log entries this ` +
      `node promised since, so it must not rejoin as ${nodeId}. Fix: start the node on its current data ` +
      `directory if it still exists; otherwise replace the member: run \`fastpaca cluster remove ${nodeId}\` ` +
      `(with at least three other active nodes) and start it with an empty data directory, so it joins as a ` +
      `new node and gets its replicas from the others`,
    { option: 'dataDir' },
  );

/**
 * The refusal of a directory that holds replicas under an incarnation the cluster does not know
 * this member by: a restored online snapshot (which carries no incarnation) or a copy of another
 * directory. Its replicas must not vote or acknowledge as that member either.
 */
export const foreignReplicasError = (dataDir: string, nodeId: NodeId): ConfigError =>
  new ConfigError(
    `${dataDir} holds Raft replicas, but the cluster knows node ${nodeId} by another data directory ` +
      `(incarnation): it is a restored snapshot or a copy, older than what ${nodeId} promised, so it must ` +
      `not rejoin as ${nodeId}. Fix: start the node on its current data directory if it still exists; ` +
      `otherwise replace the member: run \`fastpaca cluster remove ${nodeId}\` (with at least three other ` +
      `active nodes) and start it with an empty data directory, so it joins as a new node`,
    { option: 'dataDir' },
  );
