// Crash and restart with the real Raft host (raft/host/) carrying the context state machine.
//
// The host writes a group's state-machine writes and its applied index in one store batch, and on
// restart hands the state machine only entries above the recovered applied index; the state machine
// itself does not deduplicate. This checks that contract end to end: the store is cut at a random
// write (everything written later is lost, as in a crash), a fresh host and state machine reopen what
// survived, and then
// - no entry is applied twice and none is skipped (the applied indexes of both lives, joined at the
//   recovered applied index, are strictly increasing and end at the log's last entry);
// - every append acknowledged before the cut is there exactly once, with the same seq and version;
// - the stored state is byte-identical to a fresh state machine applying the same entries once.

import fc from 'fast-check';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type {
  AppliedEntry,
  BatchOp,
  GroupKv,
  GroupWriteBatch,
  KeyRange,
  KvStore,
  StateMachine,
} from '../../raft/api.js';
import type { GroupId, SnapshotMeta } from '../../raft/core/types.js';
import { RaftHost } from '../../raft/host/index.js';
import { encodeCommand } from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';
import type { CommandResult } from '../../src/context/results.js';
import { ContextKeys } from '../../src/context/keys.js';
import { decodeMessageRecord } from '../../src/context/records.js';
import { ContextStateMachine } from '../../src/context/state-machine.js';
import { MemoryNetwork, seeded, testLimits } from '../raft/host/harness.js';
import { draftArb } from './arbitraries.js';
import { stamp, World } from './world.js';

const groupCount = 2;
const contexts: readonly string[] = ['ctx-a', 'ctx-b'];
/** ctx-a is group 0 and ctx-b group 1 (as groupOf routes them with two groups). */
const groupOfContext = (contextId: string): number => contexts.indexOf(contextId);

/** An in-memory store that remembers what was durable right after its `cutAfter`-th write. */
class CrashStore implements KvStore {
  private readonly entries: Map<string, readonly [Uint8Array, Uint8Array]>;
  private frozen: Map<string, readonly [Uint8Array, Uint8Array]> | undefined;
  writes = 0;

  constructor(
    private readonly cutAfter: number,
    entries: Map<string, readonly [Uint8Array, Uint8Array]> = new Map(),
  ) {
    this.entries = new Map(entries);
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.entries.get(Buffer.from(key).toString('hex'))?.[1];
  }

  async write(ops: readonly BatchOp[]): Promise<void> {
    for (const op of ops) {
      const id = Buffer.from(op.key).toString('hex');
      if (op.type === 'put') this.entries.set(id, [Uint8Array.from(op.key), Uint8Array.from(op.value)]);
      else this.entries.delete(id);
    }
    this.writes += 1;
    if (this.writes === this.cutAfter) this.frozen = new Map(this.entries);
  }

  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    const inRange = ([key]: readonly [Uint8Array, Uint8Array]): boolean =>
      (range.gte === undefined || Buffer.compare(key, range.gte) >= 0) &&
      (range.gt === undefined || Buffer.compare(key, range.gt) > 0) &&
      (range.lt === undefined || Buffer.compare(key, range.lt) < 0) &&
      (range.lte === undefined || Buffer.compare(key, range.lte) <= 0);
    const view = [...this.entries.values()].filter(inRange).sort((a, b) => Buffer.compare(a[0], b[0]));
    if (range.reverse === true) view.reverse();
    const limited = range.limit !== undefined && range.limit >= 0 ? view.slice(0, range.limit) : view;
    return (async function* () {
      yield* limited;
    })();
  }

  async close(): Promise<void> {}

  /** The store as a crash right after the cut leaves it (everything, if the cut was never reached). */
  afterCrash(): CrashStore {
    return new CrashStore(0, this.frozen ?? this.entries);
  }
}

/** The context state machine, recording which entries it was handed. */
class RecordingContextStateMachine implements StateMachine<CommandResult> {
  readonly inner = new ContextStateMachine({ cacheContextsMax: 1 });
  readonly applied = new Map<GroupId, { index: number; data: Uint8Array }[]>();

  apply(group: GroupId, entries: readonly AppliedEntry[], batch: GroupWriteBatch, kv: GroupKv) {
    const list = this.applied.get(group) ?? [];
    this.applied.set(group, list);
    for (const entry of entries) list.push({ index: entry.index, data: Uint8Array.from(entry.data) });
    return this.inner.apply(group, entries, batch, kv);
  }

  persisted(group: GroupId, index: number): void {
    this.inner.persisted(group, index);
  }

  restored(group: GroupId, meta: SnapshotMeta): void {
    this.inner.restored(group);
    void meta;
  }
}

interface Life {
  readonly host: RaftHost<CommandResult>;
  readonly sm: RecordingContextStateMachine;
  readonly fatal: Error[];
}

const open = async (store: KvStore): Promise<Life> => {
  const sm = new RecordingContextStateMachine();
  const fatal: Error[] = [];
  const host = await RaftHost.open<CommandResult>({
    nodeId: 'solo',
    store,
    transport: new MemoryNetwork().transport('solo'),
    stateMachine: sm,
    random: seeded(7),
    now: () => 0,
    electionTicks: 10,
    heartbeatTicks: 2,
    preVote: true,
    checkQuorum: true,
    limits: testLimits({ logRetainEntries: 1_000_000 }),
    onFatal: (error) => fatal.push(error),
  });
  for (let group = 0; group < groupCount; group++) await host.bootstrapGroup(group, ['solo']);
  return { host, sm, fatal };
};

/** Runs turns until the host is idle; ticks until every group has elected this node. */
const settle = async (life: Life): Promise<void> => {
  for (let round = 0; round < 500; round++) {
    const leading = [...Array(groupCount).keys()].every((group) => life.host.leaderOf(group) === 'solo');
    if (leading && !life.host.hasWork()) return;
    if (!leading) life.host.tick();
    for (let turn = 0; turn < 50 && life.host.hasWork(); turn++) await life.host.turn();
    await yieldToLoop();
  }
  throw new Error('host did not settle within 500 rounds');
};

/** Proposes `commands` together (one Raft batch where they share a group) and drives them home. */
const proposeAll = async (life: Life, commands: readonly Command[]) => {
  const pending = commands.map((command) =>
    life.host.propose(groupOfContext(command.contextId), encodeCommand(command)),
  );
  await settle(life);
  return Promise.all(pending);
};

const stepArb = fc.record({
  context: fc.constantFrom(...contexts),
  kind: fc.constantFrom('append', 'append', 'append', 'keyed', 'compact'),
  key: fc.constantFrom('k1', 'k2', 'k3'),
  message: draftArb,
});

describe('context state machine on the real Raft host, across a crash', () => {
  it('applies every committed entry exactly once and keeps every acknowledged append', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(stepArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 40 }),
        async (batches, cutAfter) => {
          const store = new CrashStore(cutAfter);
          const first = await open(store);
          await settle(first);
          let clock = 0;
          await proposeAll(
            first,
            contexts.map((contextId) => ({
              type: 'put_context',
              contextId,
              now: stamp(++clock),
              changes: { token_budget: 150, policy: { strategy: 'last_n', config: { limit: 4 } } },
              defaults: { triggerRatio: 0.7, policy: { strategy: 'last_n', config: { limit: 200 } } },
            })),
          );
          /** Appends acknowledged while everything they depend on was within the surviving writes. */
          const durableAcks: { contextId: string; seq: number; version: number; label: string }[] = [];
          for (const batch of batches) {
            const labels: string[] = [];
            const commands: Command[] = batch.map((step) => {
              const now = stamp(++clock);
              const label = `L${clock}`;
              labels.push(label);
              if (step.kind === 'compact') {
                return { type: 'compact', contextId: step.context, now, replacement: [step.message] };
              }
              const message = {
                ...step.message,
                parts: [...step.message.parts, { type: 'label', text: label }],
                partTokens: [...step.message.partTokens, 1],
                tokenCount: step.message.tokenCount + 1,
              };
              return {
                type: 'append',
                contextId: step.context,
                now,
                message,
                ...(step.kind === 'keyed' ? { idempotencyKey: step.key } : {}),
              };
            });
            const outcomes = await proposeAll(first, commands);
            const durable = store.writes <= cutAfter;
            outcomes.forEach((outcome, index) => {
              const command = commands[index];
              if (!outcome.ok) throw new Error(`proposal failed: ${outcome.code}`);
              const result = outcome.result;
              if (!durable || command?.type !== 'append' || !('type' in result) || result.type !== 'append')
                return;
              if (result.replayed) return;
              const label = labels[index] ?? '';
              durableAcks.push({
                contextId: command.contextId,
                seq: result.seq,
                version: result.version,
                label,
              });
            });
          }
          expect(first.fatal).toEqual([]);

          // Crash: only the writes up to the cut survive. Reopen with a fresh state machine.
          const survived = store.afterCrash();
          const second = await open(survived);
          const recovered = [...Array(groupCount).keys()].map(
            (group) => second.host.status(group)?.applied ?? 0,
          );
          await settle(second);
          expect(second.fatal).toEqual([]);

          const reference = new World({ groupCount });
          for (let group = 0; group < groupCount; group++) {
            const before = (first.sm.applied.get(group) ?? []).filter(
              (e) => e.index <= (recovered[group] ?? 0),
            );
            const after = second.sm.applied.get(group) ?? [];
            for (const entry of after) expect(entry.index).toBeGreaterThan(recovered[group] ?? 0);
            const all = [...before, ...after];
            for (let i = 1; i < all.length; i++) {
              expect(all[i]?.index).toBeGreaterThan(all[i - 1]?.index ?? 0);
            }
            expect(second.host.status(group)?.applied).toBe(second.host.status(group)?.lastIndex);
            for (const entry of all) await reference.host.propose(group, entry.data);
            // Byte-identical to applying each surviving entry once.
            const stored: [string, string][] = [];
            for await (const [key, value] of second.host.groupKv(group).iterate({})) {
              stored.push([Buffer.from(key).toString('hex'), Buffer.from(value).toString('hex')]);
            }
            expect(stored).toEqual(reference.dump()[group] ?? []);
          }

          // Every durably acknowledged append is there once, with its seq and version.
          for (const contextId of contexts) {
            const group = groupOfContext(contextId);
            const page = await second.sm.inner.messages(
              group,
              second.host.groupKv(group),
              contextId,
              0,
              1_000,
            );
            const messages = page?.messages ?? [];
            expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
            const labels = messages.map((m) => m.parts.find((p) => p.type === 'label')?.text);
            expect(new Set(labels).size).toBe(labels.length);
            for (const ack of durableAcks.filter((a) => a.contextId === contextId)) {
              const found = messages.find((m) => m.seq === ack.seq);
              expect(found?.parts.find((p) => p.type === 'label')?.text).toBe(ack.label);
              // The version the client was told is the message's own, also when it triggered a
              // policy run (one version per append), and so is its policy run's.
              const stored = await second.host
                .groupKv(group)
                .get(new ContextKeys(contextId).message(ack.seq));
              const record = stored === undefined ? undefined : decodeMessageRecord(stored);
              expect(record?.version).toBe(ack.version);
              if (record?.compaction !== undefined) expect(record.compaction.version).toBe(ack.version);
            }
          }
          await first.host.close();
          await second.host.close();
        },
      ),
      { numRuns: 25 },
    );
  });
});
