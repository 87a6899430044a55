// Inbound: what the transport delivers between turns. Delivery only enqueues (on the group's replica,
// or aside for a group this node does not have yet), bounded by limits.inboundQueueMax; the next
// turn adopts or drops the unknown groups' input and steps the rest into the cores, so a core is
// never touched outside a turn.

import type { GroupMessage } from '../api.js';
import { MessageType, type GroupId, type Message, type NodeId } from '../core/types.js';
import type { Groups } from './groups.js';
import type { GroupReplica, InboundSnapshot } from './replica.js';
import type { MutableStats } from './stats.js';

interface UnknownGroupInput {
  from: NodeId;
  messages: Message[];
  snapshot?: InboundSnapshot;
}

export interface InboundContext<Result> {
  /** The hosted groups; a group with input is marked for the next turn. */
  readonly groups: Pick<Groups<Result>, 'get' | 'markDirty'>;
  readonly stats: MutableStats;
  readonly inboundQueueMax: number;
  /** A reason drops arriving entries and snapshots (RaftHostOptions.refuseEntries). */
  readonly refuseEntries: () => string | undefined;
  /** Tells an idle loop that there is work. */
  readonly wake: () => void;
}

export class Inbound<Result> {
  /** Messages and snapshots for groups this node does not have yet, adopted (or dropped) next turn. */
  private readonly unknownInbox = new Map<GroupId, UnknownGroupInput>();
  /** Messages queued and not yet stepped, known groups and unknown ones alike. */
  private count = 0;

  constructor(private readonly context: InboundContext<Result>) {}

  /** Input for groups this node does not have is waiting for the next turn. */
  get hasUnknown(): boolean {
    return this.unknownInbox.size > 0;
  }

  onMessages(from: NodeId, batch: readonly GroupMessage[]): void {
    const { stats, groups } = this.context;
    stats.messagesReceived += batch.length;
    const refusingEntries = this.context.refuseEntries() !== undefined;
    for (const { group, message } of batch) {
      // Snapshots arrive only through onSnapshot, with their data.
      if (this.count >= this.context.inboundQueueMax || message.type === MessageType.Snap) {
        stats.messagesDropped += 1;
        continue;
      }
      if (refusingEntries && carriesEntries(message)) {
        stats.entriesRefused += 1;
        continue;
      }
      const replica = groups.get(group);
      if (replica !== undefined) {
        replica.inbox.push(message);
        groups.markDirty(replica);
      } else {
        this.unknownEntry(group, from).messages.push(message);
      }
      this.count += 1;
    }
    this.context.wake();
  }

  /** One snapshot per group at a time; resolves with whether it was installed. */
  onSnapshot(
    from: NodeId,
    group: GroupId,
    message: Message,
    pairs: readonly (readonly [Uint8Array, Uint8Array])[],
  ): Promise<boolean> {
    if (message.type !== MessageType.Snap || message.snapshot === undefined) return Promise.resolve(false);
    if (this.context.refuseEntries() !== undefined) {
      this.context.stats.entriesRefused += 1;
      return Promise.resolve(false);
    }
    const replica = this.context.groups.get(group);
    const pendingUnknown = this.unknownInbox.get(group)?.snapshot;
    if (replica?.inboundSnapshot !== undefined || pendingUnknown !== undefined) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const inbound: InboundSnapshot = { message, pairs, resolve, stepped: false };
      if (replica !== undefined) {
        replica.inboundSnapshot = inbound;
        this.context.groups.markDirty(replica);
      } else {
        this.unknownEntry(group, from).snapshot = inbound;
      }
      this.context.wake();
    });
  }

  /**
   * Moves unknown groups' input to the replicas `adopt` creates (or already has); drops the input of
   * the groups it refuses.
   */
  adoptUnknownGroups(adopt: (group: GroupId, from: NodeId) => GroupReplica<Result> | undefined): void {
    if (this.unknownInbox.size === 0) return;
    for (const [group, { from, messages, snapshot }] of this.unknownInbox) {
      this.count -= messages.length;
      const replica = adopt(group, from);
      if (replica === undefined) {
        this.context.stats.messagesDropped += messages.length;
        snapshot?.resolve(false);
        continue;
      }
      for (const message of messages) replica.inbox.push(message);
      this.count += messages.length;
      if (snapshot !== undefined && replica.inboundSnapshot === undefined) replica.inboundSnapshot = snapshot;
      else snapshot?.resolve(false);
      this.context.groups.markDirty(replica);
    }
    this.unknownInbox.clear();
  }

  /** Steps the group's received snapshot (once) and its queued messages into its core. */
  stepInto(replica: GroupReplica<Result>): void {
    const core = replica.core;
    const inbound = replica.inboundSnapshot;
    if (inbound !== undefined && !inbound.stepped) {
      inbound.stepped = true;
      core.step(inbound.message);
    }
    this.count -= replica.inbox.length;
    for (const message of replica.inbox) core.step(message);
    replica.inbox.length = 0;
  }

  /** Shutdown or failure: snapshots for unknown groups are refused, their messages forgotten. */
  dropUnknown(): void {
    for (const { snapshot } of this.unknownInbox.values()) snapshot?.resolve(false);
    this.unknownInbox.clear();
  }

  private unknownEntry(group: GroupId, from: NodeId): UnknownGroupInput {
    let entry = this.unknownInbox.get(group);
    if (entry === undefined) {
      entry = { from, messages: [] };
      this.unknownInbox.set(group, entry);
    }
    return entry;
  }
}

/** An append that would make this node write entries (an empty one only moves the commit index). */
const carriesEntries = (message: Message): boolean =>
  message.type === MessageType.App && (message.entries?.length ?? 0) > 0;
