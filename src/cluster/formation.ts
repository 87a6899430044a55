// Joining a cluster: probe the seed until the expected number of nodes (this one included) is
// known, then bootstrap every Raft group this node holds a replica of with the voters placement.ts
// computes from the sorted member list. Every node computes the same voters, so the nodes that
// bootstrap independently form ONE cluster, and no node bootstraps alone while the seed names
// peers. A restarted node recovers its groups from disk and only needs its peers' addresses again,
// so probing continues (more slowly) after joining, picking up peers that moved.

import type { DrivableHost } from '../../raft/api.js';
import type { NodeId } from '../../raft/core/types.js';
import type { SeedPeer } from '../config/cluster-seed.js';
import type { Logger } from '../logger.js';
import type { Member, ProbeOptions, ProbeResult } from './discovery.js';
import { joinHostPort, probeSeed } from './discovery.js';
import { votersFor } from './placement.js';

export interface FormationOptions {
  readonly nodeId: NodeId;
  readonly seed: readonly SeedPeer[];
  readonly clusterSecret: string | undefined;
  /** Nodes, this one included, to know before bootstrapping. */
  readonly expectedSize: number;
  readonly groupCount: number;
  readonly host: Pick<DrivableHost, 'groups' | 'bootstrapGroup'>;
  /** Every known peer's Raft (gRPC) address, whenever the set changes. */
  readonly onPeers: (peers: ReadonlyMap<NodeId, string>) => void;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Probe pacing before joining: doubles from initial to max. Default 200 → 1000 ms. */
  readonly probeBackoffMs?: { readonly initial: number; readonly max: number };
  /** Probe interval once joined. Default 5000 ms. */
  readonly refreshMs?: number;
  readonly probeTimeoutMs?: number;
  /** How often to log why the cluster is not formed yet. Default 5000 ms. */
  readonly waitLogIntervalMs?: number;
  /** For tests: replaces the HTTP probe. */
  readonly probe?: (options: ProbeOptions) => Promise<ProbeResult>;
}

export interface Formation {
  /** True once this node's groups exist (bootstrapped now, or recovered from disk). */
  joined(): boolean;
  /** Known members, this node included, sorted by id. */
  memberIds(): readonly NodeId[];
  /** Known peers and their Raft addresses. */
  peers(): ReadonlyMap<NodeId, string>;
  /** Why the node has not joined yet (undefined once joined). */
  waitingReason(): string | undefined;
  close(): Promise<void>;
}

export const startFormation = (options: FormationOptions): Formation => {
  const backoff = options.probeBackoffMs ?? { initial: 200, max: 1_000 };
  const refreshMs = options.refreshMs ?? 5_000;
  const waitLogIntervalMs = options.waitLogIntervalMs ?? 5_000;
  const probe = options.probe ?? probeSeed;
  const members = new Map<NodeId, Member>();
  const stopping = new AbortController();
  let peersKey = '';
  let joined = options.host.groups().length >= options.groupCount;
  let lastProblems: readonly string[] = [];
  let lastWaitLogAt = 0;

  const knownIds = (): NodeId[] => [...new Set([options.nodeId, ...members.keys()])].sort();

  const peerAddresses = (): Map<NodeId, string> =>
    new Map(
      [...members.values()].map((member) => [member.nodeId, joinHostPort(member.host, member.raftPort)]),
    );

  const publishPeers = (): void => {
    const peers = peerAddresses();
    const key = JSON.stringify([...peers].sort());
    if (key === peersKey) return;
    peersKey = key;
    options.onPeers(peers);
    options.logger.info({ type: 'cluster_peers', peers: Object.fromEntries(peers) }, 'cluster peers updated');
  };

  const merge = (found: readonly Member[]): void => {
    for (const member of found) {
      if (member.nodeId === options.nodeId) continue;
      members.set(member.nodeId, member);
    }
  };

  const bootstrap = async (): Promise<void> => {
    const ids = knownIds();
    if (ids.length > options.expectedSize) {
      options.logger.warn(
        { type: 'cluster_oversized', known: ids.length, expected: options.expectedSize },
        'more nodes answered than the expected cluster size; forming with all of them',
      );
    }
    const writes: Promise<void>[] = [];
    for (let group = 0; group < options.groupCount; group += 1) {
      const voters = votersFor(group, ids);
      // Concurrent: each is its own synced write, and LevelDB commits concurrent writers together.
      if (voters.includes(options.nodeId)) writes.push(options.host.bootstrapGroup(group, voters));
    }
    await Promise.all(writes);
    joined = true;
    options.logger.info(
      { type: 'cluster_formed', members: ids, groupsHosted: writes.length },
      'cluster formed',
    );
  };

  const logWaiting = (): void => {
    const now = Date.now();
    if (now - lastWaitLogAt < waitLogIntervalMs) return;
    lastWaitLogAt = now;
    options.logger.warn(
      { type: 'cluster_waiting', known: knownIds(), expected: options.expectedSize, problems: lastProblems },
      `waiting for cluster peers: ${knownIds().length}/${options.expectedSize} nodes known` +
        (lastProblems.length > 0 ? `; ${lastProblems.join('; ')}` : ''),
    );
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        stopping.signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      stopping.signal.addEventListener('abort', wake, { once: true });
    });

  const run = async (): Promise<void> => {
    let delayMs = backoff.initial;
    while (!stopping.signal.aborted) {
      const result = await probe({
        seed: options.seed,
        clusterSecret: options.clusterSecret,
        timeoutMs: options.probeTimeoutMs ?? 2_000,
      });
      if (stopping.signal.aborted) return;
      merge(result.members);
      lastProblems = result.problems;
      publishPeers();
      if (!joined && knownIds().length >= options.expectedSize) await bootstrap();
      if (joined) {
        await sleep(refreshMs);
        continue;
      }
      logWaiting();
      await sleep(delayMs);
      delayMs = Math.min(backoff.max, delayMs * 2);
    }
  };

  const running = run().catch((error: unknown) => {
    // A failed bootstrap write is a storage failure: the host reports it as fatal on its own.
    options.logger.error({ type: 'cluster_formation_failed', err: error }, 'cluster formation stopped');
  });

  return {
    joined: () => joined,
    memberIds: knownIds,
    peers: peerAddresses,
    waitingReason: () =>
      joined ? undefined : `waiting for cluster peers (${knownIds().length}/${options.expectedSize} known)`,
    close: async () => {
      stopping.abort();
      await running;
    },
  };
};
