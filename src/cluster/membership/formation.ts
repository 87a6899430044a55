// Joining a cluster. A fresh node probes the seed. If a node it reaches already belongs to a formed
// cluster, it must not form one of its own: it asks to be added to the member list (the meta
// group) and waits for the groups' leaders to send it replicas. Otherwise, once the expected number
// of nodes (this one included) is known AND every one of them reports knowing exactly the same ids,
// the first `expectedSize` of those ids (sorted) bootstrap every Raft group they hold a replica of
// with the voters placement.ts computes from them: every former computes the same voters, so nodes
// that bootstrap independently form ONE cluster, and no node bootstraps alone while the seed names
// peers. The agreement matters: nodes that saw different sets (a fourth node appearing mid-formation)
// would bootstrap the same groups with different voters, and two leaders could win one term. Known
// sets only grow and a node stops answering `known` once it decides to form, so two nodes that each
// saw every member of their set agree can only have decided on the same set. Nodes beyond the first
// `expectedSize` wait, then join the formed cluster like any newcomer. The meta group is bootstrapped last, so a node that has it on disk
// bootstrapped (or received) everything it needs and counts as joined after a restart.
// Every joined node makes sure the member list names it (formed nodes register themselves right
// after bootstrapping), and probing continues (more slowly) after joining, picking up moved peers.

import type { DrivableHost, GroupId, NodeId } from '../../../raft/index.js';
import type { SeedPeer } from '../../config/cluster-seed.js';
import type { Logger } from '../../telemetry/logger.js';
import type { JoinRequest, Member, ProbeOptions, ProbeResult } from './discovery.js';
import { joinHostPort, probeSeed, requestJoin } from './discovery.js';
import { votersFor } from '../placement/placement.js';
import type { PeerTls } from '../../../net/grpc.js';

export interface FormationOptions {
  readonly nodeId: NodeId;
  /**
   * This node's data directory incarnation. A member list names this node only if it names this
   * incarnation too: one that names an earlier one (the directory was replaced) is not a welcome.
   */
  readonly incarnation: string;
  readonly seed: readonly SeedPeer[];
  readonly clusterSecret: string | undefined;
  /** TLS for the internal HTTP calls to peers (peer-http.ts); plain HTTP when absent. */
  readonly tls?: PeerTls | undefined;
  /** Nodes, this one included, to know before bootstrapping. */
  readonly expectedSize: number;
  readonly groupCount: number;
  /** The membership group (bootstrapped with the data groups, after them). Default: groupCount. */
  readonly metaGroup?: GroupId;
  readonly host: Pick<DrivableHost, 'groups' | 'bootstrapGroup'>;
  /** Every known peer's Raft (gRPC) address, whenever the set changes. */
  readonly onPeers: (peers: ReadonlyMap<NodeId, string>) => void;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** This node's own ports, for its join request. Default: none (the node never asks to join). */
  readonly selfPorts?: () => { readonly httpPort: number; readonly raftPort: number };
  /**
   * Whether this node's own member list (its meta replica) names it. Peers' hello answers are
   * consulted as well. Default: only peers' answers.
   */
  readonly registered?: () => boolean;
  /** Probe pacing before joining: doubles from initial to max. Default 200 → 1000 ms. */
  readonly probeBackoffMs?: { readonly initial: number; readonly max: number };
  /** Probe interval once joined. Default 5000 ms. */
  readonly refreshMs?: number;
  readonly probeTimeoutMs?: number;
  /** How often to log why the cluster is not formed yet. Default 5000 ms. */
  readonly waitLogIntervalMs?: number;
  /** For tests: replaces the HTTP probe. */
  readonly probe?: (options: ProbeOptions) => Promise<ProbeResult>;
  /** For tests: replaces the HTTP join request. */
  readonly join?: (request: JoinRequest) => Promise<void>;
}

export interface Formation {
  /** True once this node belongs to the cluster (bootstrapped, recovered from disk, or added). */
  joined(): boolean;
  /**
   * True once this node may take replicas from the cluster's leaders: once it is joined, never while
   * it asks, so a node the cluster refuses (a replaced data directory under a member's name) never
   * answers for replicas it no longer has.
   */
  acceptsReplicas(): boolean;
  /** Known members, this one included, sorted by id. */
  memberIds(): readonly NodeId[];
  /** Known peers and their Raft addresses. */
  peers(): ReadonlyMap<NodeId, string>;
  /** This node's address as the seed names it, if the seed reaches it. */
  selfHost(): string | undefined;
  /** The ids this node bootstrapped the cluster with, if it did in this run. */
  formedWith(): readonly NodeId[] | undefined;
  /** Why the node has not joined yet (undefined once joined). */
  waitingReason(): string | undefined;
  close(): Promise<void>;
}

export const startFormation = (options: FormationOptions): Formation => {
  const backoff = options.probeBackoffMs ?? { initial: 200, max: 1_000 };
  const refreshMs = options.refreshMs ?? 5_000;
  const waitLogIntervalMs = options.waitLogIntervalMs ?? 5_000;
  const metaGroup = options.metaGroup ?? options.groupCount;
  const probe = options.probe ?? probeSeed;
  const join = options.join ?? requestJoin;
  /** Peers that answered a probe of the seed. */
  const members = new Map<NodeId, Member>();
  /** Peers only named in the member lists of hello answers (not in the seed). */
  const advertised = new Map<NodeId, { host: string; httpPort: number; raftPort: number }>();
  const stopping = new AbortController();
  let peersKey = '';
  let joined = options.host.groups().includes(metaGroup);
  let joining = false;
  let selfHost: string | undefined;
  /** The ids this node bootstrapped with, in this run. */
  let formedWith: readonly NodeId[] | undefined;
  let listedByPeers = false;
  /** A peer lists this very incarnation as removed: asking to join again would only be refused. */
  let removedByPeers = false;
  /** A peer's member list names this node, as whatever incarnation: it has been a member. */
  let namedByPeers = false;
  let removedLogged = false;
  let joinAttempt = 0;
  let lastProblems: readonly string[] = [];
  let lastWaitLogAt = 0;

  const knownIds = (): NodeId[] => [...new Set([options.nodeId, ...members.keys()])].sort();

  const peerAddresses = (): Map<NodeId, string> => {
    const peers = new Map<NodeId, string>();
    for (const [id, member] of advertised) peers.set(id, joinHostPort(member.host, member.raftPort));
    for (const member of members.values())
      peers.set(member.nodeId, joinHostPort(member.host, member.raftPort));
    return peers;
  };

  const publishPeers = (): void => {
    const peers = peerAddresses();
    const key = JSON.stringify([...peers].sort());
    if (key === peersKey) return;
    peersKey = key;
    options.onPeers(peers);
    options.logger.info({ type: 'cluster_peers', peers: Object.fromEntries(peers) }, 'cluster peers updated');
  };

  const merge = (found: readonly Member[]): void => {
    listedByPeers = false;
    removedByPeers = false;
    namedByPeers = false;
    for (const member of found) {
      for (const known of member.knownMembers ?? []) {
        if (known.node_id === options.nodeId) {
          namedByPeers = true;
          if (known.state === 'removed') {
            if ((known.incarnation ?? options.incarnation) === options.incarnation) removedByPeers = true;
          } else if (known.incarnation === options.incarnation) {
            listedByPeers = true;
          }
          continue;
        }
        advertised.set(known.node_id, {
          host: known.host,
          httpPort: known.http_port,
          raftPort: known.raft_port,
        });
      }
      if (member.nodeId === options.nodeId) {
        selfHost = member.host;
        continue;
      }
      members.set(member.nodeId, member);
    }
  };

  /**
   * The ids to form the cluster with, once every known node answered this round, none has formed or
   * is forming, and each reports knowing exactly what this node knows; undefined until then.
   */
  const agreedFormers = (answers: readonly Member[]): NodeId[] | undefined => {
    const known = knownIds();
    if (known.length < options.expectedSize) return undefined;
    const answered = new Map(answers.map((answer) => [answer.nodeId, answer]));
    for (const id of known) {
      if (id === options.nodeId) continue;
      const answer = answered.get(id);
      if (answer === undefined || answer.joined === true || answer.formedWith !== undefined) return undefined;
      const theirs = answer.known;
      if (theirs?.length !== known.length || theirs.some((other, i) => other !== known[i])) return undefined;
    }
    return known.slice(0, options.expectedSize);
  };

  const bootstrap = async (ids: readonly NodeId[]): Promise<void> => {
    // Set before the first write: from now on hello answers say so instead of listing `known`.
    formedWith = [...ids];
    const writes: Promise<void>[] = [];
    for (let group = 0; group < options.groupCount; group += 1) {
      const voters = votersFor(group, ids);
      // Concurrent: each is its own synced write, and LevelDB commits concurrent writers together.
      if (voters.includes(options.nodeId)) writes.push(options.host.bootstrapGroup(group, voters));
    }
    await Promise.all(writes);
    // Last: having it on disk means every group above was written (see `joined` at start).
    const metaVoters = votersFor(metaGroup, ids);
    if (metaVoters.includes(options.nodeId)) await options.host.bootstrapGroup(metaGroup, metaVoters);
    joined = true;
    options.logger.info(
      { type: 'cluster_formed', members: ids, groupsHosted: writes.length },
      'cluster formed',
    );
  };

  const registered = (): boolean => listedByPeers || (options.registered?.() ?? false);

  /** One join request, to the next member in turn that belongs to the cluster. */
  const askToJoin = async (): Promise<boolean> => {
    const ports = options.selfPorts?.();
    if (ports === undefined) return false;
    const vias = [
      ...[...members.values()].filter((member) => member.joined === true),
      ...[...advertised.values()],
    ];
    const via = vias[joinAttempt % Math.max(1, vias.length)];
    joinAttempt += 1;
    if (via === undefined) return false;
    try {
      await join({
        via: { host: via.host, httpPort: via.httpPort },
        nodeId: options.nodeId,
        incarnation: options.incarnation,
        httpPort: ports.httpPort,
        raftPort: ports.raftPort,
        host: selfHost,
        clusterSecret: options.clusterSecret,
        tls: options.tls,
        timeoutMs: options.probeTimeoutMs ?? 5_000,
      });
      return true;
    } catch (error) {
      lastProblems = [(error as Error).message];
      return false;
    }
  };

  const logRemoved = (): void => {
    if (removedLogged) return;
    removedLogged = true;
    options.logger.warn(
      { type: 'cluster_removed' },
      'this node was removed from the cluster and hosts no replicas: switch it off; to add it again, start it with an empty data directory',
    );
  };

  const logWaiting = (): void => {
    const now = Date.now();
    if (now - lastWaitLogAt < waitLogIntervalMs) return;
    lastWaitLogAt = now;
    const why = joining
      ? 'waiting to be added to the cluster'
      : `waiting for cluster peers: ${knownIds().length}/${options.expectedSize} nodes known`;
    options.logger.warn(
      { type: 'cluster_waiting', known: knownIds(), expected: options.expectedSize, problems: lastProblems },
      why + (lastProblems.length > 0 ? `; ${lastProblems.join('; ')}` : ''),
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
        tls: options.tls,
        timeoutMs: options.probeTimeoutMs ?? 2_000,
      });
      if (stopping.signal.aborted) return;
      merge(result.members);
      lastProblems = result.problems;
      publishPeers();
      if (!joined && !joining) {
        // A peer that formed the cluster with this node in it (this node started late): bootstrap
        // the very same groups, rather than be sent every replica as a newcomer. Not if the member
        // list names this node already: it was a member and lost its data directory, so a bootstrap
        // would make it a voter that forgot its votes; it asks to join (and is refused) instead.
        const formedWithUs = [...members.values()]
          .map((member) => member.formedWith)
          .find((ids) => ids?.includes(options.nodeId) === true);
        if (formedWithUs !== undefined && !namedByPeers) await bootstrap([...formedWithUs].sort());
        else if (
          [...members.values()].some((member) => member.joined === true || member.formedWith !== undefined)
        ) {
          // A formed (or forming) cluster answered: bootstrapping now would start a second one.
          joining = true;
          options.logger.info({ type: 'cluster_joining' }, 'a cluster exists; asking to be added');
        } else {
          const formers = agreedFormers(result.members);
          if (formers?.includes(options.nodeId) === true) await bootstrap(formers);
        }
      }
      let settled = joined;
      if (removedByPeers) logRemoved();
      if ((joined || joining) && !removedByPeers) {
        const listed = registered() || (await askToJoin());
        if (listed && joining) {
          joining = false;
          joined = true;
          options.logger.info({ type: 'cluster_joined' }, 'added to the cluster');
        }
        settled = joined && listed;
      }
      if (settled) {
        await sleep(refreshMs);
        continue;
      }
      if (!joined && !removedByPeers) logWaiting();
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
    acceptsReplicas: () => joined,
    memberIds: knownIds,
    peers: peerAddresses,
    selfHost: () => selfHost,
    formedWith: () => formedWith,
    waitingReason: () => {
      if (joined) return undefined;
      if (removedByPeers) return 'removed from the cluster; start with an empty data directory to join again';
      if (joining) return 'waiting to be added to the cluster';
      return `waiting for cluster peers (${knownIds().length}/${options.expectedSize} known)`;
    },
    close: async () => {
      stopping.abort();
      await running;
    },
  };
};
