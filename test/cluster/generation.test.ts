// The member list's record of each incarnation's generation (cluster/membership/generation.ts):
// it is the highest generation reported by that very incarnation, never lower than before, kept
// across a re-join of the same incarnation and started afresh by a new incarnation after removal;
// and the generation file round-trips and refuses garbage.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { readGeneration, writeGeneration } from '../../src/cluster/membership/generation.js';
import type { ClusterMember, MembershipCommand } from '../../src/cluster/membership/membership.js';
import {
  applyMembership,
  decodeMembers,
  decodeMembershipCommand,
  encodeMembers,
  encodeMembershipCommand,
} from '../../src/cluster/membership/membership.js';

const member = (nodeId: string, incarnation: string): ClusterMember => ({
  nodeId,
  host: '127.0.0.1',
  httpPort: 4000,
  raftPort: 5000,
  incarnation,
  state: 'active',
});

const generationOf = (members: readonly ClusterMember[], nodeId: string): number | undefined =>
  members.find((m) => m.nodeId === nodeId)?.generation;

describe('recorded generations', () => {
  it('keep the highest generation its own incarnation reported, never less', () => {
    fc.assert(
      fc.property(
        // A node reports only generations it has written first, and those start at 1 (0 is the
        // "nothing written yet" of an absent file, never reported).
        fc.array(
          fc.record({
            incarnation: fc.constantFrom('i1', 'i2'),
            generation: fc.integer({ min: 1, max: 1_000 }),
          }),
          {
            maxLength: 40,
          },
        ),
        (reports) => {
          let members: readonly ClusterMember[] = [member('a', 'i1'), member('b', 'i9')];
          let expected: number | undefined;
          for (const report of reports) {
            const command: MembershipCommand = { type: 'generation', nodeId: 'a', ...report };
            // Every replica decodes what was proposed.
            const decoded = decodeMembershipCommand(encodeMembershipCommand(command));
            const applied = applyMembership(members, decoded, 3);
            expect(applied.outcome.ok).toBe(report.incarnation === 'i1');
            if (report.incarnation === 'i1') expected = Math.max(expected ?? 0, report.generation);
            const before = generationOf(members, 'a') ?? 0;
            members = decodeMembers(encodeMembers(applied.members));
            expect(generationOf(members, 'a') ?? 0).toBeGreaterThanOrEqual(before);
            expect(generationOf(members, 'a')).toBe(expected);
            expect(generationOf(members, 'b')).toBeUndefined();
          }
        },
      ),
    );
  });

  it('survive a re-join of the same incarnation; a new incarnation after removal starts afresh', () => {
    let members: readonly ClusterMember[] = ['a', 'b', 'c', 'd'].map((id) => member(id, `${id}-1`));
    members = applyMembership(
      members,
      { type: 'generation', nodeId: 'a', incarnation: 'a-1', generation: 7 },
      3,
    ).members;
    const rejoined = applyMembership(members, { type: 'join', member: member('a', 'a-1') }, 3);
    expect(generationOf(rejoined.members, 'a')).toBe(7);
    members = applyMembership(members, { type: 'leave', nodeId: 'a' }, 3).members;
    members = applyMembership(members, { type: 'forget', nodeId: 'a' }, 3).members;
    expect(
      applyMembership(members, { type: 'generation', nodeId: 'a', incarnation: 'a-1', generation: 9 }, 3)
        .outcome.ok,
    ).toBe(false);
    members = applyMembership(members, { type: 'purge', nodeId: 'a' }, 3).members;
    const fresh = applyMembership(members, { type: 'join', member: member('a', 'a-2') }, 3);
    expect(fresh.outcome.ok).toBe(true);
    expect(generationOf(fresh.members, 'a')).toBeUndefined();
  });

  it('refuses malformed generation commands', () => {
    const tagged = (json: object): Uint8Array => {
      const body = new TextEncoder().encode(JSON.stringify(json));
      return Uint8Array.of(0x4d, ...body);
    };
    for (const generation of [-1, 1.5, '3', null, Number.MAX_SAFE_INTEGER + 2]) {
      expect(() =>
        decodeMembershipCommand(tagged({ type: 'generation', nodeId: 'a', incarnation: 'i', generation })),
      ).toThrow();
    }
  });
});

describe('the generation file', () => {
  it('is 0 when absent, round-trips, and refuses garbage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fastpaca-generation-'));
    try {
      expect(await readGeneration(dir)).toBe(0);
      await writeGeneration(dir, 41);
      expect(await readGeneration(dir)).toBe(41);
      writeFileSync(join(dir, 'generation'), 'forty-two\n');
      await expect(readGeneration(dir)).rejects.toThrow(/no valid generation/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
