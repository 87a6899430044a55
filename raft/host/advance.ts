// Advance: every Ready of the turn goes back to its core, which then knows what is durable. A group
// whose only member is this node has thereby committed what it just persisted; that applies in this
// same turn (commit alone) instead of waiting a whole turn (one more store write) for it.

import type { NodeId } from '../core/types.js';
import { fail } from '../core/invariant.js';
import { applyAndResolve, type ApplyContext } from './apply.js';
import type { Groups } from './groups.js';
import type { ReadyWork } from './replica.js';

export interface AdvanceContext<Result> {
  readonly self: NodeId;
  readonly groups: Pick<Groups<Result>, 'markDirty' | 'observeSoftState'>;
  readonly apply: ApplyContext<Result>;
}

/** Hands every Ready back to its core; groups with more to do are marked for the next turn. */
export const advance = async <Result>(
  readys: readonly ReadyWork<Result>[],
  context: AdvanceContext<Result>,
): Promise<void> => {
  const alone: ReadyWork<Result>[] = [];
  for (const item of readys) {
    item.replica.core.advance(item.ready);
    if (commitsAlone(item, context.self)) alone.push(item);
    else if (item.replica.core.hasReady()) context.groups.markDirty(item.replica);
  }
  await commitAlone(alone, context);
};

/**
 * A group whose only member is this node committed the entries it just persisted the moment advance()
 * counted our own copy: nothing else has to happen before they apply.
 */
const commitsAlone = <Result>({ replica, ready }: ReadyWork<Result>, self: NodeId): boolean =>
  ready.entries.length > 0 && replica.isLeader && replica.isLoneMember(self) && replica.core.hasReady();

/**
 * Applies and resolves what lone-member groups committed when advance() counted the entries this turn
 * persisted. Nothing was stepped since advance(), so such a Ready holds only committed entries and a
 * commit-only hard state, which is never written (see WriteBatch.persist); the applied record goes
 * with the next write.
 */
const commitAlone = async <Result>(
  alone: readonly ReadyWork<Result>[],
  { groups, apply }: AdvanceContext<Result>,
): Promise<void> => {
  if (alone.length === 0) return;
  const readys = alone.map(({ replica }) => ({ replica, ready: replica.core.ready() }));
  for (const { replica, ready } of readys) {
    if (
      ready.entries.length > 0 ||
      ready.snapshot !== undefined ||
      ready.messages.length > 0 ||
      ready.mustSync
    ) {
      fail(`group ${replica.group}: a lone member's commit Ready carries more than commits`);
    }
    groups.observeSoftState(replica, ready);
  }
  await Promise.all(readys.map((item) => applyAndResolve(apply, item)));
  for (const { replica, ready } of readys) {
    replica.core.advance(ready);
    if (replica.core.hasReady()) groups.markDirty(replica);
  }
};
