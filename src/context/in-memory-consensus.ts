// A single-node ConsensusHost without Raft: every proposal is "committed" at once and applied
// through the real state machine, one at a time per group, over in-memory key-value spaces. It is
// the reference the service is tested against, and shows what the real host owes the state machine:
// ordered applies per group, one write batch per apply, `persisted` once the batch is durable.
//
// With `deferPersist`, applied writes are held back from the store until `flush()`, as the real
// host does until its next synced batch; reads then depend on the state machine's dirty overlay.

import type {
  AppliedEntry,
  ConsensusHost,
  FailureCode,
  GroupKv,
  GroupStatus,
  ProposeOutcome,
  ReadOutcome,
  StateMachine,
  ConfState,
  GroupId,
  NodeId,
} from '../../raft/index.js';
import { MemoryKv } from './memory-kv.js';
import type { CommandResult } from './results.js';

export interface InMemoryConsensusOptions {
  readonly stateMachine: StateMachine<CommandResult>;
  readonly groupCount?: number;
  readonly deferPersist?: boolean;
}

type WriteOp = { readonly key: Uint8Array; readonly value: Uint8Array | null };

interface PendingBatch {
  readonly group: GroupId;
  readonly index: number;
  readonly ops: readonly WriteOp[];
}

export const localNodeId: NodeId = 'local';

export class InMemoryConsensusHost implements ConsensusHost<CommandResult> {
  private readonly stateMachine: StateMachine<CommandResult>;
  private readonly groupCount: number;
  private readonly deferPersist: boolean;
  private readonly kvs = new Map<GroupId, MemoryKv>();
  private readonly applied = new Map<GroupId, number>();
  /** Per group, the tail of its apply chain: applies of one group never overlap. */
  private readonly chains = new Map<GroupId, Promise<unknown>>();
  private readonly pending: PendingBatch[] = [];
  private readonly injected: { readonly operation: 'propose' | 'read'; readonly code: FailureCode }[] = [];

  constructor(options: InMemoryConsensusOptions) {
    this.stateMachine = options.stateMachine;
    this.groupCount = options.groupCount ?? 256;
    this.deferPersist = options.deferPersist ?? false;
  }

  propose(group: GroupId, data: Uint8Array): Promise<ProposeOutcome<CommandResult>> {
    const failure = this.takeFailure('propose');
    if (failure !== undefined) return Promise.resolve({ ok: false, code: failure });
    return this.enqueue(group, () => this.applyOne(group, data));
  }

  readIndex(group: GroupId): Promise<ReadOutcome> {
    const failure = this.takeFailure('read');
    if (failure !== undefined) return Promise.resolve({ ok: false, code: failure });
    // Everything proposed before this call is applied once the group's chain reaches it.
    return this.enqueue(group, async () => ({ ok: true as const, index: this.applied.get(group) ?? 0 }));
  }

  leaderOf(): NodeId | null {
    return localNodeId;
  }

  status(): GroupStatus | undefined {
    return undefined;
  }

  groups(): readonly GroupId[] {
    return Array.from({ length: this.groupCount }, (_, group) => group);
  }

  async changeMembership(): Promise<ProposeOutcome<ConfState>> {
    return { ok: false, code: 'NO_GROUP', message: 'the in-memory host has one fixed member' };
  }

  transferLeader(): void {}

  groupKv(group: GroupId): GroupKv {
    return this.kvOf(group);
  }

  /** The next `propose` or `readIndex` call fails with `code` (tests of the failure mapping). */
  failNext(operation: 'propose' | 'read', code: FailureCode): void {
    this.injected.push({ operation, code });
  }

  /** Makes every held-back batch durable, in apply order, and tells the state machine. */
  flush(): void {
    for (const batch of this.pending.splice(0)) this.persist(batch);
  }

  /** Replaces a group's space with `pairs`, as installing a snapshot does. */
  async restore(group: GroupId, pairs: readonly (readonly [Uint8Array, Uint8Array])[]): Promise<void> {
    await this.enqueue(group, async () => {
      const kv = this.kvOf(group);
      kv.clear();
      for (const [key, value] of pairs) kv.put(key, value);
      const kept = this.pending.filter((batch) => batch.group !== group);
      this.pending.splice(0, this.pending.length, ...kept);
      const index = this.applied.get(group) ?? 0;
      await this.stateMachine.restored(group, {
        index,
        term: 1,
        conf: { voters: [localNodeId], learners: [] },
      });
    });
  }

  /** Every group's stored pairs (hex), groups ascending; held-back batches are not included. */
  dump(): Record<number, [string, string][]> {
    const groups = [...this.kvs.keys()].sort((a, b) => a - b);
    return Object.fromEntries(groups.map((group) => [group, this.kvOf(group).dump()]));
  }

  private enqueue<T>(group: GroupId, work: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(group) ?? Promise.resolve()).then(work);
    this.chains.set(
      group,
      run.catch(() => undefined),
    );
    return run;
  }

  private async applyOne(group: GroupId, data: Uint8Array): Promise<ProposeOutcome<CommandResult>> {
    const index = (this.applied.get(group) ?? 0) + 1;
    const ops: WriteOp[] = [];
    const batch = {
      put: (key: Uint8Array, value: Uint8Array) => ops.push({ key, value }),
      del: (key: Uint8Array) => ops.push({ key, value: null }),
    };
    const entry: AppliedEntry = { index, term: 1, data };
    const [result] = await this.stateMachine.apply(group, [entry], batch, this.kvOf(group));
    if (result === undefined) throw new Error('state machine returned no result');
    this.applied.set(group, index);
    if (this.deferPersist) this.pending.push({ group, index, ops });
    else this.persist({ group, index, ops });
    return { ok: true, index, result };
  }

  private persist(batch: PendingBatch): void {
    const kv = this.kvOf(batch.group);
    for (const op of batch.ops) {
      if (op.value === null) kv.del(op.key);
      else kv.put(op.key, op.value);
    }
    this.stateMachine.persisted?.(batch.group, batch.index);
  }

  private kvOf(group: GroupId): MemoryKv {
    if (!Number.isInteger(group) || group < 0 || group >= this.groupCount)
      throw new RangeError(`group ${group}`);
    let kv = this.kvs.get(group);
    if (kv === undefined) {
      kv = new MemoryKv();
      this.kvs.set(group, kv);
    }
    return kv;
  }

  private takeFailure(operation: 'propose' | 'read'): FailureCode | undefined {
    const at = this.injected.findIndex((failure) => failure.operation === operation);
    if (at < 0) return undefined;
    const [failure] = this.injected.splice(at, 1);
    return failure?.code;
  }
}
