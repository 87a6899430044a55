// Changes to the member list, all decided by the meta group: join, leave and forget requests from
// the internal endpoints, the meta leader's report of removed members gone for good, and reading
// the list back from the meta replica after a restart or a snapshot install.

import type { ConsensusHost, GroupId, NodeId } from '../../../raft/index.js';
import { ServiceError } from '../../api/errors.js';
import { failureToServiceError } from '../../context/consensus.js';
import type { Logger } from '../../telemetry/logger.js';
import type { ClusterConsensus } from '../remote/cluster-consensus.js';
import type { MembershipCommand } from './membership.js';
import { applyMembership, encodeMembershipCommand } from './membership.js';
import type { MembershipStateMachine } from './membership-state-machine.js';

export interface MemberChanges {
  /** Proposes a membership change to the meta group (forwarded to its leader); throws a ServiceError. */
  change(command: MembershipCommand): Promise<void>;
  /** Throws a not_found ServiceError unless `id` is on the member list. */
  requireMember(id: NodeId): void;
  /**
   * As the meta group's leader (its applied conf is then the authority): reports each removed member
   * the meta group no longer counts, so its name may come back as a new incarnation (membership.ts).
   * A removed member is never added back, so the report cannot go stale.
   */
  purgeGone(): void;
  /** After a restart or a snapshot install, reads the member list back from the meta replica. */
  load(): void;
}

export const createMemberChanges = (options: {
  readonly metaGroup: GroupId;
  readonly host: Pick<ConsensusHost, 'status' | 'groupKv'>;
  readonly consensus: Pick<ClusterConsensus, 'proposeBytes'>;
  readonly membership: MembershipStateMachine;
  readonly replicationFactor: number;
  readonly joined: () => boolean;
  readonly logger: Logger;
}): MemberChanges => {
  const { metaGroup, host, consensus, membership, logger } = options;

  const change = async (command: MembershipCommand): Promise<void> => {
    if (!options.joined()) {
      throw new ServiceError('raft_unavailable', 'This node has not joined the cluster yet', {
        retryAfterSeconds: 1,
      });
    }
    // A join the member list as this node knows it refuses already is answered without a meta entry:
    // a refused node asks again every second. An accepted one is decided by the meta group's apply.
    if (command.type === 'join' && membership.loaded()) {
      const preview = applyMembership(membership.members(), command, options.replicationFactor).outcome;
      if (!preview.ok) throw new ServiceError('conflict', preview.reason);
    }
    const outcome = await consensus.proposeBytes(metaGroup, encodeMembershipCommand(command));
    if (!outcome.ok) throw failureToServiceError(outcome);
    if ('error' in outcome.result) throw new ServiceError('conflict', outcome.result.message);
  };

  let purging = false;
  const purgeGone = (): void => {
    const meta = host.status(metaGroup);
    if (purging || meta?.role !== 'leader' || !membership.loaded()) return;
    const counted = new Set([...meta.conf.voters, ...meta.conf.learners]);
    const gone = membership
      .members()
      .filter(
        (member) => member.state === 'removed' && member.purged !== true && !counted.has(member.nodeId),
      );
    if (gone.length === 0) return;
    purging = true;
    void Promise.all(
      gone.map(({ nodeId: id }) =>
        change({ type: 'purge', nodeId: id }).catch((error: unknown) =>
          logger.warn(
            { type: 'member_purge_failed', node: id, err: error },
            'reporting a removed node gone failed',
          ),
        ),
      ),
    ).finally(() => {
      purging = false;
    });
  };

  let loading = false;
  const load = (): void => {
    if (loading || membership.loaded() || host.status(metaGroup) === undefined) return;
    loading = true;
    membership
      .load(host.groupKv(metaGroup))
      .catch((error: unknown) => logger.error({ err: error }, 'reading the member list failed'))
      .finally(() => {
        loading = false;
      });
  };

  return {
    change,
    requireMember: (id) => {
      if (!membership.members().some((member) => member.nodeId === id))
        throw new ServiceError('not_found', `Node ${JSON.stringify(id)} is not a cluster member`);
    },
    purgeGone,
    load,
  };
};
