// A poison entry in the meta group cannot take the cluster down either (issue 15, item 4): the
// membership state machine decodes its own entries (JSON behind a tag byte, membership.ts). Over
// random member lists and random poison entries (random bytes, random JSON, valid commands with a
// field replaced), apply never throws, two replicas answer and write alike, and a refused entry
// leaves the list as it was.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AppliedEntry, GroupWriteBatch } from '../../raft/api.js';
import { encodeMembershipCommand } from '../../src/cluster/membership/membership.js';
import type { MembershipCommand } from '../../src/cluster/membership/membership.js';
import { MembershipStateMachine } from '../../src/cluster/membership/membership-state-machine.js';
import { MemoryKv } from '../../src/context/memory-kv.js';
import type { CommandResult } from '../../src/context/results.js';

const nodeIds = ['n1', 'n2', 'n3', 'n4'] as const;
const tag = 0x4d;

const commandArb: fc.Arbitrary<MembershipCommand> = fc.oneof(
  fc.record({
    type: fc.constant('join' as const),
    member: fc.record(
      {
        nodeId: fc.constantFrom(...nodeIds),
        host: fc.constantFrom('10.0.0.1', 'h'),
        httpPort: fc.integer({ min: 0, max: 65_535 }),
        raftPort: fc.integer({ min: 0, max: 65_535 }),
        incarnation: fc.constantFrom('i1', 'i2'),
      },
      { requiredKeys: ['nodeId', 'host', 'httpPort', 'raftPort'] },
    ),
  }),
  fc.record({
    type: fc.constantFrom('leave' as const, 'forget' as const, 'purge' as const),
    nodeId: fc.constantFrom(...nodeIds),
  }),
);

const hostileArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(-1, 65_536, 1.5, '', '__proto__', null, true, [], {}, 'x'.repeat(100_000)),
  fc.jsonValue({ maxDepth: 3 }),
);

const jsonBytes = (text: string): Uint8Array => {
  const json = new TextEncoder().encode(text);
  const bytes = new Uint8Array(json.length + 1);
  bytes[0] = tag;
  bytes.set(json, 1);
  return bytes;
};

/** A valid command's JSON with one field (or the member's) replaced by a hostile value. */
const mutated = (command: MembershipCommand, field: number, value: unknown): Uint8Array => {
  const json = JSON.parse(JSON.stringify(command)) as Record<string, unknown>;
  const target =
    typeof json['member'] === 'object' && json['member'] !== null && field % 2 === 0
      ? (json['member'] as Record<string, unknown>)
      : json;
  const keys = Object.keys(target);
  target[keys[field % keys.length] ?? 'type'] = value;
  return jsonBytes(JSON.stringify(target === json ? json : { ...json, member: target }));
};

const poisonArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Uint8Array.of(tag, ...bytes)),
  fc.jsonValue().map((value) => jsonBytes(JSON.stringify(value))),
  fc.integer({ min: 1, max: 50_000 }).map((depth) => jsonBytes(`${'['.repeat(depth)}${']'.repeat(depth)}`)),
  fc.tuple(commandArb, fc.nat(), hostileArb).map(([command, field, value]) => mutated(command, field, value)),
);

class Replica {
  readonly kv = new MemoryKv();
  readonly sm = new MembershipStateMachine(2);
  private index = 0;

  async apply(data: Uint8Array): Promise<{ result: CommandResult; writes: [string, string][] }> {
    const writes: [string, string][] = [];
    const batch: GroupWriteBatch = {
      put: (key, value) => {
        writes.push([Buffer.from(key).toString('hex'), Buffer.from(value).toString('hex')]);
        this.kv.put(key, value);
      },
      del: (key) => {
        writes.push([Buffer.from(key).toString('hex'), '']);
        this.kv.del(key);
      },
    };
    const entry: AppliedEntry = { index: ++this.index, term: 1, data };
    const [result] = await this.sm.apply([entry], batch, this.kv);
    if (result === undefined) throw new Error('no result');
    return { result, writes };
  }
}

describe('membership state machine under poison entries', () => {
  it('never throws, answers and writes alike on two replicas, and a refused entry changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(commandArb, { maxLength: 12 }),
        fc.array(poisonArb, { minLength: 1, maxLength: 4 }),
        async (commands, poisons) => {
          const replicas = [new Replica(), new Replica()] as const;
          for (const command of commands) {
            for (const replica of replicas) await replica.apply(encodeMembershipCommand(command));
          }
          for (const poison of poisons) {
            const before = replicas[0].sm.members();
            const [first, second] = [await replicas[0].apply(poison), await replicas[1].apply(poison)];
            expect(second).toEqual(first);
            expect(replicas[1].sm.members()).toEqual(replicas[0].sm.members());
            if ('error' in first.result) {
              expect(replicas[0].sm.members()).toEqual(before);
              expect(first.writes).toEqual([]);
            }
          }
          expect(replicas[1].kv.dump()).toEqual(replicas[0].kv.dump());
        },
      ),
      { numRuns: 200 },
    );
  });
});
