// The groups this node hosts, and which of them the next turn must visit. Every phase that finds a
// group with work marks it dirty here; a turn takes the dirty set whole, so an idle group costs a turn
// nothing. The led set lets an unreachable peer be reported to the groups that replicate to it only.

import type { KvStore } from '../api.js';
import type { GroupId, NodeId, Ready } from '../core/types.js';
import { GroupReplica, type GroupInit } from './replica.js';

export class Groups<Result> {
  private readonly byGroup = new Map<GroupId, GroupReplica<Result>>();
  /** Groups with something for the next turn: queued input, or a core that may have a Ready. */
  private readonly dirty = new Set<GroupReplica<Result>>();
  /** Groups this node leads, as of the last soft state their cores reported. */
  private readonly led = new Set<GroupReplica<Result>>();
  /** RaftHost.holdVotes is in force: replicas added meanwhile start with their votes held. */
  votesHeld = false;

  constructor(
    private readonly self: NodeId,
    private readonly store: KvStore,
  ) {}

  get(group: GroupId): GroupReplica<Result> | undefined {
    return this.byGroup.get(group);
  }

  has(group: GroupId): boolean {
    return this.byGroup.has(group);
  }

  /** `replica` is still the one hosted for its group (not forgotten, not replaced). */
  hosts(replica: GroupReplica<Result>): boolean {
    return this.byGroup.get(replica.group) === replica;
  }

  ids(): GroupId[] {
    return [...this.byGroup.keys()];
  }

  all(): Iterable<GroupReplica<Result>> {
    return this.byGroup.values();
  }

  /** Some group has work for the next turn. */
  get anyDirty(): boolean {
    return this.dirty.size > 0;
  }

  add(group: GroupId, init: GroupInit): GroupReplica<Result> {
    const replica = new GroupReplica<Result>(group, this.store, init);
    if (this.votesHeld) replica.holdVotes = true;
    this.byGroup.set(group, replica);
    const voters = init.applied.conf.voters;
    // A lone voter needs no election round trip: it leads in milliseconds.
    if (voters.length === 1 && voters[0] === this.self) replica.core.campaign();
    this.markDirty(replica);
    return replica;
  }

  remove(replica: GroupReplica<Result>): void {
    this.byGroup.delete(replica.group);
    this.dirty.delete(replica);
    this.led.delete(replica);
  }

  markDirty(replica: GroupReplica<Result>): void {
    this.dirty.add(replica);
  }

  /** The groups this turn visits; the next turn starts with none. */
  takeDirty(): GroupReplica<Result>[] {
    const work = [...this.dirty];
    this.dirty.clear();
    return work;
  }

  /** Who leads the group, as its core last reported. */
  observeSoftState(replica: GroupReplica<Result>, ready: Ready): void {
    const soft = ready.softState;
    if (soft === undefined) return;
    replica.leader = soft.leader;
    replica.isLeader = soft.role === 'leader';
    if (replica.isLeader) this.led.add(replica);
    else this.led.delete(replica);
  }

  tick(ticks: number): void {
    for (const replica of this.byGroup.values()) {
      for (let i = 0; i < ticks; i += 1) replica.core.tick();
      if (replica.core.hasReady()) this.markDirty(replica);
    }
  }

  /** The transport lost these peers: the groups this node leads stop replicating to them for now. */
  reportUnreachable(peers: readonly NodeId[]): void {
    if (peers.length === 0) return;
    for (const replica of this.led) {
      for (const peer of peers) replica.core.reportUnreachable(peer);
      this.markDirty(replica);
    }
  }
}
