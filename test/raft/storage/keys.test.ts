// Proves the binary key layout orders the way the storage relies on: log batch keys sort by (group,
// index) numerically, and a group's snapshot space is exactly the keys under its prefix (fast-check).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appliedStateKey,
  groupSpaceKey,
  groupSpacePrefix,
  hardStateKey,
  keyGroup,
  logBatchFirstIndex,
  logBatchKey,
  logMetaKey,
  prefixRange,
  rangeUnderPrefix,
  stateMachineKey,
  stateMachinePrefix,
} from '../../../raft/storage/keys.js';

const compare = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);
const group = fc.integer({ min: 0, max: 0xffff });
const index = fc.nat({ max: Number.MAX_SAFE_INTEGER });

const within = (key: Uint8Array, range: { gte?: Uint8Array; lt?: Uint8Array }): boolean =>
  (range.gte === undefined || compare(key, range.gte) >= 0) &&
  (range.lt === undefined || compare(key, range.lt) < 0);

describe('storage keys', () => {
  it('sort log batches by (group, firstIndex) and decode back', () => {
    fc.assert(
      fc.property(group, index, group, index, (g1, i1, g2, i2) => {
        const order = compare(logBatchKey(g1, i1), logBatchKey(g2, i2));
        const expected = g1 !== g2 ? Math.sign(g1 - g2) : Math.sign(i1 - i2);
        expect(Math.sign(order)).toBe(expected);
        expect(logBatchFirstIndex(logBatchKey(g1, i1))).toBe(i1);
        expect(keyGroup(logBatchKey(g1, i1))).toBe(g1);
      }),
    );
  });

  it("put a group's applied state and state-machine keys in its space, and no other group's", () => {
    fc.assert(
      fc.property(group, group, fc.uint8Array({ maxLength: 12 }), (g, other, suffix) => {
        const space = prefixRange(groupSpacePrefix(g));
        expect(within(appliedStateKey(g), space)).toBe(true);
        expect(within(stateMachineKey(g, suffix), space)).toBe(true);
        expect(compare(appliedStateKey(g), stateMachineKey(g, suffix))).toBeLessThan(0);
        expect(within(stateMachineKey(other, suffix), space)).toBe(other === g);
        expect(within(hardStateKey(g), space)).toBe(false);
        expect(within(logMetaKey(g), space)).toBe(false);
        expect(groupSpaceKey(g, stateMachineKey(g, suffix).subarray(3))).toEqual(stateMachineKey(g, suffix));
      }),
    );
  });

  it('translate suffix ranges without leaving the prefix', () => {
    fc.assert(
      fc.property(group, fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (g, a, b) => {
        const prefix = stateMachinePrefix(g);
        const range = rangeUnderPrefix(prefix, { gte: a });
        const key = stateMachineKey(g, b);
        expect(within(key, range as { gte?: Uint8Array; lt?: Uint8Array })).toBe(compare(b, a) >= 0);
        const open = rangeUnderPrefix(prefix, {}) as { gte?: Uint8Array; lt?: Uint8Array };
        expect(within(key, open)).toBe(true);
        expect(within(stateMachineKey((g + 1) & 0xffff, b), open)).toBe(false);
        expect(within(appliedStateKey(g), open)).toBe(false);
      }),
    );
  });

  it('refuses groups outside u16', () => {
    expect(() => hardStateKey(0x10000)).toThrow(RangeError);
    expect(() => logBatchKey(-1, 0)).toThrow(RangeError);
  });
});
