// The Raft host takes one state machine; a cluster node has two kinds of group. This routes each
// call by group id: the meta group to the membership state machine, every other group to the
// context state machine.

import type {
  AppliedEntry,
  GroupKv,
  GroupWriteBatch,
  StateMachine,
  GroupId,
  Index,
  SnapshotMeta,
} from '../../../raft/index.js';
import type { CommandResult } from '../../context/results.js';
import type { MembershipStateMachine } from '../membership/membership-state-machine.js';

export const routeStateMachines = (
  metaGroup: GroupId,
  membership: MembershipStateMachine,
  contexts: StateMachine<CommandResult>,
): StateMachine<CommandResult> => ({
  apply: (group: GroupId, entries: readonly AppliedEntry[], batch: GroupWriteBatch, kv: GroupKv) =>
    group === metaGroup ? membership.apply(entries, batch, kv) : contexts.apply(group, entries, batch, kv),
  persisted: (group: GroupId, appliedIndex: Index) => {
    // The membership list is cached whole and never dropped on persist: nothing to release.
    if (group !== metaGroup) contexts.persisted?.(group, appliedIndex);
  },
  restored: (group: GroupId, meta: SnapshotMeta) =>
    group === metaGroup ? membership.restored() : contexts.restored(group, meta),
});
