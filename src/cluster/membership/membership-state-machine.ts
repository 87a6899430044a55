// The meta group's state machine: one key holding the member list (membership.ts), kept in memory
// as well so the runtime reads it without touching the store. Its results are CommandResults (a
// no-op for an applied change, a `conflict` error for a refused one) so meta proposals travel the
// same host and forwarding paths as context commands.

import type { AppliedEntry, GroupKv, GroupWriteBatch } from '../../../raft/index.js';
import type { CommandResult } from '../../context/results.js';
import type { ClusterMember } from './membership.js';
import {
  applyMembership,
  decodeMembers,
  decodeMembershipCommand,
  encodeMembers,
  MembershipDecodeError,
} from './membership.js';

const membersKey = new TextEncoder().encode('members');

export class MembershipStateMachine {
  /** Undefined until loaded from the store (after a start or a snapshot install). */
  private cached: readonly ClusterMember[] | undefined;
  private readonly listeners = new Set<(members: readonly ClusterMember[]) => void>();

  constructor(private readonly minActive: number) {}

  /** The last applied list ([] before anything is known). */
  members(): readonly ClusterMember[] {
    return this.cached ?? [];
  }

  /** Whether the in-memory list reflects the store (false after a restart or a snapshot install). */
  loaded(): boolean {
    return this.cached !== undefined;
  }

  onChange(listener: (members: readonly ClusterMember[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reads the list from the store unless an apply already did. */
  async load(kv: GroupKv): Promise<void> {
    if (this.cached !== undefined) return;
    const stored = await kv.get(membersKey);
    // An apply may have run while the read was in flight; its list is newer.
    if (this.cached !== undefined) return;
    this.set(stored === undefined ? [] : decodeMembers(stored));
  }

  async apply(
    entries: readonly AppliedEntry[],
    batch: GroupWriteBatch,
    kv: GroupKv,
  ): Promise<readonly CommandResult[]> {
    await this.load(kv);
    let members = this.members();
    const results: CommandResult[] = [];
    for (const entry of entries) {
      if (entry.data.length === 0) {
        results.push({ type: 'noop' });
        continue;
      }
      let command;
      try {
        command = decodeMembershipCommand(entry.data);
      } catch (error) {
        // Deterministic on every replica: answered and skipped.
        if (error instanceof MembershipDecodeError) {
          results.push({ error: 'internal', message: error.message });
          continue;
        }
        throw error;
      }
      const applied = applyMembership(members, command, this.minActive);
      members = applied.members;
      results.push(
        applied.outcome.ok ? { type: 'noop' } : { error: 'conflict', message: applied.outcome.reason },
      );
    }
    if (members !== this.members()) {
      batch.put(membersKey, encodeMembers(members));
      this.set(members);
    }
    return results;
  }

  /** The group's space was replaced by a snapshot: reload on next use. */
  restored(): void {
    this.cached = undefined;
  }

  private set(members: readonly ClusterMember[]): void {
    this.cached = members;
    for (const listener of this.listeners) listener(members);
  }
}
