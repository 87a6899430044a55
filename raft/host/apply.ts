// Apply and settle: a group's committed entries go to the state machine in order (runs of Normal
// entries in one call), conf changes to the core, and every waiter whose outcome is now known is
// answered: a proposal succeeds iff the entry applied at its index is the one it proposed (same term),
// a read once its index has applied. The state machine's writes are not written here: they join the
// next store write (see WriteBatch).

import type { StateMachine } from '../api.js';
import { EntryKind, decodeConfChange, type Entry } from '../core/types.js';
import { PrefixedWriteBatch } from '../storage/group-kv.js';
import type { GroupReplica, PendingProposal, Proposal, ReadyWork } from './replica.js';
import { failure } from './requests.js';
import type { MutableStats } from './stats.js';

/** Marks an applied entry that produced no state-machine result (the leader's no-op). */
const NO_RESULT = Symbol('no result');

export interface ApplyContext<Result> {
  readonly stateMachine: StateMachine<Result>;
  readonly stats: MutableStats;
  /** Groups with writes for the next store write (WriteBatch.unflushed). */
  readonly unflushed: Set<GroupReplica<Result>>;
}

/** Applies one group's committed entries in order and resolves its waiters. */
export const applyAndResolve = async <Result>(
  context: ApplyContext<Result>,
  { replica, ready }: ReadyWork<Result>,
): Promise<void> => {
  const entries = ready.committedEntries;
  let runStart = 0;
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i] as Entry;
    if (entry.kind === EntryKind.Normal && entry.data.length > 0) continue;
    await applyRun(context, replica, entries, runStart, i);
    runStart = i + 1;
    if (entry.kind === EntryKind.Conf) applyConf(replica, entry);
    else settleProposal(replica, entry, NO_RESULT);
  }
  await applyRun(context, replica, entries, runStart, entries.length);
  const last = entries.at(-1);
  if (last !== undefined) {
    replica.applied = { index: last.index, term: last.term, conf: replica.applied.conf };
    replica.appliedUnflushed = true;
    context.unflushed.add(replica);
    context.stats.entriesApplied += entries.length;
  }
  for (const state of ready.readStates) {
    const read = replica.readsByContext.get(state.context);
    if (read === undefined) continue;
    replica.readsByContext.delete(state.context);
    read.index = state.index;
    replica.readsWaitingApply.push(read);
  }
  replica.resolveReads();
};

/** Hands entries[from, to) (all non-empty Normal entries) to the state machine in one call. */
const applyRun = async <Result>(
  { stateMachine, unflushed }: ApplyContext<Result>,
  replica: GroupReplica<Result>,
  entries: readonly Entry[],
  from: number,
  to: number,
): Promise<void> => {
  if (to <= from) return;
  const run = from === 0 && to === entries.length ? entries : entries.slice(from, to);
  const batch = new PrefixedWriteBatch(replica.group, replica.unflushedOps);
  const results = await stateMachine.apply(replica.group, run, batch, replica.kv);
  if (results.length !== run.length) {
    // The application's state machine broke its contract: not a consensus invariant.
    throw new Error(
      `group ${replica.group}: state machine returned ${results.length} results for ${run.length}`,
    );
  }
  unflushed.add(replica);
  for (let i = 0; i < run.length; i += 1) {
    settleProposal(replica, run[i] as Entry, { result: results[i] as Result });
  }
};

const applyConf = <Result>(replica: GroupReplica<Result>, entry: Entry): void => {
  const conf = replica.core.applyConfChange(decodeConfChange(entry.data));
  replica.applied = { index: entry.index, term: entry.term, conf };
  replica.confHistory.push({ index: entry.index, conf });
  const pending = replica.pending.get(entry.index);
  if (pending === undefined) return;
  replica.pending.delete(entry.index);
  pendingSettled(pending, entry, (proposal) =>
    proposal.kind === 'conf'
      ? proposal.request.finish({ ok: true, index: entry.index, result: conf })
      : false,
  );
};

/** Resolves the waiter of a Normal entry (the no-op has no result: a waiter there lost its index). */
const settleProposal = <Result>(
  replica: GroupReplica<Result>,
  entry: Entry,
  applied: { readonly result: Result } | typeof NO_RESULT,
): void => {
  const pending = replica.pending.get(entry.index);
  if (pending === undefined) return;
  replica.pending.delete(entry.index);
  pendingSettled(pending, entry, (proposal) =>
    proposal.kind === 'normal' && applied !== NO_RESULT
      ? proposal.request.finish({ ok: true, index: entry.index, result: applied.result })
      : false,
  );
};

/** Our entry committed iff the applied entry at its index has its term; otherwise it was dropped. */
const pendingSettled = <Result>(
  pending: PendingProposal<Result>,
  entry: Entry,
  succeed: (proposal: Proposal<Result>) => void | false,
): void => {
  if (pending.term === entry.term && succeed(pending.proposal) !== false) return;
  pending.proposal.request.finish(failure('DROPPED', 'another entry was committed at this index'));
};
