// Deletes the replicas this node lost in a move. A replica its group removed is never told so (the
// leader stops talking to it), so this node asks its peers: when the node that leads a group (the
// one authority on its membership) no longer counts this node, and placement does not want a
// replica here either, the local copy is stale and its data is deleted. A replica that is still a
// member is never dropped, whatever placement says: it may be a voter the group still needs.
// A leader's word counts only from a term at least the local replica's own: a deposed leader that
// has not heard of a later move back here (which the local replica, having caught up under the
// newer leader, has) would otherwise have a current voter's data deleted.

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import type { Logger } from '../../telemetry/logger.js';
import { statusPath } from '../membership/internal-protocol.js';
import { callPeer } from '../membership/peer-http.js';
import type { PeerAuth } from '../membership/peer-http.js';
import type { NodeStatusLike } from '../membership/removal-progress.js';

export interface ReplicaJanitorOptions extends PeerAuth {
  readonly nodeId: NodeId;
  readonly host: Pick<ConsensusHost, 'groups' | 'status'>;
  /** Whether placement wants a replica of `group` here (false also while the member list is unknown). */
  readonly placedElsewhere: (group: GroupId) => boolean;
  /** HTTP addresses (host:port) of the other current members. */
  readonly peerHttpAddresses: () => readonly string[];
  readonly forget: (group: GroupId) => Promise<boolean>;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  readonly requestTimeoutMs?: number;
  /** For tests: replaces the HTTP status request. */
  readonly fetchStatus?: (address: string) => Promise<NodeStatusLike>;
}

export interface ReplicaJanitor {
  /** One look: resolves with the groups forgotten. Rounds do not overlap (a busy round is skipped). */
  round(): Promise<readonly GroupId[]>;
}

const forgetBatch = 32;

export const createReplicaJanitor = (options: ReplicaJanitorOptions): ReplicaJanitor => {
  const { host, nodeId } = options;
  let running = false;

  const fetchStatus =
    options.fetchStatus ??
    (async (address: string): Promise<NodeStatusLike> => {
      const response = await callPeer(options, address, statusPath, {
        timeoutMs: options.requestTimeoutMs ?? 2_000,
      });
      if (response.status !== 200) throw new Error(`${address} answered status with HTTP ${response.status}`);
      return JSON.parse(response.text) as NodeStatusLike;
    });

  const candidates = (): GroupId[] =>
    host.groups().filter((group) => host.status(group)?.role !== 'leader' && options.placedElsewhere(group));

  const sweep = async (): Promise<GroupId[]> => {
    if (candidates().length === 0) return [];
    const answers = await Promise.allSettled(
      options.peerHttpAddresses().map((address) => fetchStatus(address)),
    );
    /** Per group, the membership its leader reports (the highest term if two claim it). */
    const authority = new Map<GroupId, { term: number; members: Set<NodeId> }>();
    for (const answer of answers) {
      if (answer.status !== 'fulfilled') continue;
      const status = answer.value;
      for (const view of [...status.groups, ...(status.meta === undefined ? [] : [status.meta])]) {
        if (view.leader !== status.node_id) continue;
        const known = authority.get(view.group);
        if (known !== undefined && known.term >= view.term) continue;
        authority.set(view.group, {
          term: view.term,
          members: new Set([...view.voters, ...(view.learners ?? [])]),
        });
      }
    }
    // Checked again now: a move back here may have started while the peers answered.
    const stale = candidates().filter((group) => {
      const leader = authority.get(group);
      const localTerm = host.status(group)?.term ?? Number.POSITIVE_INFINITY;
      return leader !== undefined && leader.term >= localTerm && !leader.members.has(nodeId);
    });
    const forgotten: GroupId[] = [];
    // A few at a time: each is a synced store write, and LevelDB commits concurrent writers together.
    for (let start = 0; start < stale.length; start += forgetBatch) {
      const batch = stale.slice(start, start + forgetBatch);
      const done = await Promise.all(batch.map((group) => options.forget(group)));
      forgotten.push(...batch.filter((_, i) => done[i] === true));
    }
    if (forgotten.length > 0) {
      options.logger.info(
        { type: 'replicas_forgotten', groups: forgotten },
        `deleted ${forgotten.length} replicas that moved to other nodes`,
      );
    }
    return forgotten;
  };

  return {
    round: async () => {
      if (running) return [];
      running = true;
      try {
        return await sweep();
      } catch (error) {
        options.logger.warn(
          { type: 'replica_janitor_failed', err: error },
          'looking for moved replicas failed',
        );
        return [];
      } finally {
        running = false;
      }
    },
  };
};
