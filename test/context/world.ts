// A context state machine behind the in-memory consensus host, driven with concrete commands: what
// the property and example tests of test/context run against. Commands are proposed to the group
// the service would route them to, so several contexts share a group as in production.

import type { GroupKv } from '../../raft/api.js';
import { encodeCommand } from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';
import { InMemoryConsensusHost } from '../../src/context/in-memory-consensus.js';
import type { CommandResult } from '../../src/context/results.js';
import { ContextStateMachine } from '../../src/context/state-machine.js';
import type { ContextView, LlmContextView, MessagesPage, StoredMessage } from '../../src/api/domain.js';
import { groupOf } from '../../src/context/routing.js';
import type { ContextEvent } from '../../src/context/events.js';

export interface WorldOptions {
  readonly groupCount?: number;
  /** Hold applied writes back from the store until flush (the state machine's overlay serves them). */
  readonly deferPersist?: boolean;
  readonly cacheContextsMax?: number;
}

export class World {
  readonly sm: ContextStateMachine;
  readonly host: InMemoryConsensusHost;
  readonly groupCount: number;
  /** The events the state machine announced (onEvent) for the last command run. */
  lastEvents: ContextEvent[] = [];

  constructor(options: WorldOptions = {}) {
    this.groupCount = options.groupCount ?? 2;
    this.sm = new ContextStateMachine({
      ...(options.cacheContextsMax === undefined ? {} : { cacheContextsMax: options.cacheContextsMax }),
      onEvent: ({ event }) => this.lastEvents.push(event),
    });
    this.host = new InMemoryConsensusHost({
      stateMachine: this.sm,
      groupCount: this.groupCount,
      deferPersist: options.deferPersist ?? false,
    });
  }

  group(contextId: string): number {
    return groupOf(contextId, this.groupCount);
  }

  kv(contextId: string): GroupKv {
    return this.host.groupKv(this.group(contextId));
  }

  async run(command: Command): Promise<CommandResult> {
    this.lastEvents = [];
    const outcome = await this.host.propose(this.group(command.contextId), encodeCommand(command));
    if (!outcome.ok) throw new Error(`proposal failed: ${outcome.code}`);
    return outcome.result;
  }

  getContext(id: string): Promise<ContextView | undefined> {
    return this.sm.getContext(this.group(id), this.kv(id), id);
  }

  window(id: string, budgetTokens?: number): Promise<LlmContextView | undefined> {
    return this.sm.window(this.group(id), this.kv(id), id, budgetTokens);
  }

  tail(id: string, limit: number, offset: number): Promise<StoredMessage[]> {
    return this.sm.tail(this.group(id), this.kv(id), id, limit, offset);
  }

  messages(id: string, fromSeq: number, limit: number): Promise<MessagesPage | undefined> {
    return this.sm.messages(this.group(id), this.kv(id), id, fromSeq, limit);
  }

  /** Every stored pair of every group, after making held-back writes durable. */
  dump(): Record<number, [string, string][]> {
    this.host.flush();
    return this.host.dump();
  }

  /** The raw pairs of one group's space (what a Raft snapshot of it carries). */
  async groupPairs(group: number): Promise<[Uint8Array, Uint8Array][]> {
    this.host.flush();
    const pairs: [Uint8Array, Uint8Array][] = [];
    for await (const [key, value] of this.host.groupKv(group).iterate({})) pairs.push([key, value]);
    return pairs;
  }
}

/** A deterministic ISO timestamp for the n-th command (the accepting node's clock, in production). */
export const stamp = (n: number): string => new Date(Date.UTC(2025, 0, 1) + n * 1_000).toISOString();
