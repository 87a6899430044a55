// Feed and collect, the turn's first phases: everything queued for a group since the last turn
// (messages, a received snapshot, snapshot-send reports, leadership transfers, proposals, reads) is
// stepped into its core in that order, then every core that has a Ready hands it over. Proposals and
// reads the core refuses are answered here; the ones it takes wait on the replica.

import type { ProposeResult } from '../core/types.js';
import type { Inbound } from './inbound.js';
import type { GroupReplica, Proposal, ReadWaiter, ReadyWork } from './replica.js';
import { failure, proposeFailure, type Requests } from './requests.js';

/** Read contexts: a per-incarnation random prefix above a 31-bit counter, all within 2^53. */
const READ_COUNTER_SPAN = 0x8000_0000;
const READ_PREFIX_SPAN = 0x40_0000;

/**
 * Contexts of this incarnation's reads. A ReadIndexResp can outlive the process that asked for it
 * (queued by the leader's transport while this node restarted); a counter restarting at 1 would hand
 * that stale index to a new read with the same number, serving a stale read. The random prefix keeps
 * each incarnation's contexts apart.
 */
export class ReadContexts {
  private readonly base: number;
  private counter = 0;

  constructor(random: () => number) {
    this.base = Math.floor(random() * READ_PREFIX_SPAN) * READ_COUNTER_SPAN;
  }

  next(): number {
    this.counter = (this.counter % (READ_COUNTER_SPAN - 1)) + 1;
    return this.base + this.counter;
  }
}

export interface FeedContext<Result> {
  readonly inbound: Inbound<Result>;
  readonly requests: Requests;
  readonly pendingProposalsMax: number;
  readonly readContexts: ReadContexts;
  /** Proposal bytes this turn may still hand to cores (the turn resets it); see turnProposalBytesMax. */
  readonly budget: { proposalBytes: number };
}

/** Steps queued input into the group's core; proposals past the turn's byte budget stay queued. */
export const feed = <Result>(replica: GroupReplica<Result>, context: FeedContext<Result>): void => {
  const core = replica.core;
  // Before any message: a vote request in this very turn must already meet the fence.
  if (replica.voteFence !== undefined) core.fenceVotes(replica.voteFence);
  replica.voteFence = undefined;
  if (replica.logFence !== undefined) core.fenceLog(replica.logFence.index, replica.logFence.term);
  replica.logFence = undefined;
  if (replica.holdVotes !== undefined) core.holdVotes(replica.holdVotes);
  replica.holdVotes = undefined;
  context.inbound.stepInto(replica);
  for (const { peer, ok } of replica.snapshotReports) core.reportSnapshot(peer, ok);
  replica.snapshotReports.length = 0;
  for (const to of replica.transfers) core.transferLeader(to);
  replica.transfers.length = 0;
  let handed = 0;
  for (const proposal of replica.proposals) {
    if (context.budget.proposalBytes <= 0) break;
    if (proposal.kind === 'normal') context.budget.proposalBytes -= proposal.data.length;
    handOff(replica, proposal, context);
    handed += 1;
  }
  // Past the turn's budget the rest wait, in order, for the next turn (the caller keeps it dirty).
  replica.proposals.splice(0, handed);
  for (const read of replica.reads) startRead(replica, read, context);
  replica.reads.length = 0;
};

/** The Ready of every group that has one. A stepped snapshot the core did not take is refused. */
export const collectReadys = <Result>(work: readonly GroupReplica<Result>[]): ReadyWork<Result>[] => {
  const readys: ReadyWork<Result>[] = [];
  for (const replica of work) {
    const ready = replica.core.hasReady() ? replica.core.ready() : undefined;
    if (ready !== undefined) readys.push({ replica, ready });
    const inbound = replica.inboundSnapshot;
    if (inbound?.stepped === true && ready?.snapshot === undefined) {
      inbound.resolve(false);
      replica.inboundSnapshot = undefined;
    }
  }
  return readys;
};

const handOff = <Result>(
  replica: GroupReplica<Result>,
  proposal: Proposal<Result>,
  { requests, pendingProposalsMax }: FeedContext<Result>,
): void => {
  const request = proposal.request;
  if (request.done) return;
  if (requests.pendingProposals >= pendingProposalsMax) {
    request.finish(failure('OVERLOADED', 'too many proposals in flight'));
    return;
  }
  const result: ProposeResult =
    proposal.kind === 'normal'
      ? replica.core.propose(proposal.data)
      : replica.core.proposeConfChange(proposal.change);
  if (!result.ok) {
    request.finish(proposeFailure(result));
    return;
  }
  requests.handedOff(request);
  // Only one entry can hold an index in the log that gets committed: an older waiter there lost.
  replica.pending.get(result.index)?.proposal.request.finish(failure('DROPPED', 'overwritten'));
  replica.pending.set(result.index, { term: result.term, proposal });
};

const startRead = <Result>(
  replica: GroupReplica<Result>,
  read: ReadWaiter,
  { readContexts }: FeedContext<Result>,
): void => {
  if (read.request.done) return;
  const context = readContexts.next();
  const result = replica.core.readIndex(context);
  if (!result.ok) {
    read.request.finish(failure('NOT_LEADER', 'no leader to serve the read', result.leader));
    return;
  }
  replica.trackRead(context, read);
};
