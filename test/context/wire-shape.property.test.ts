// The command scan (src/context/wire-shape.ts) decides which committed entries every replica refuses,
// so a change to it must not change a single answer: differential against the previous scan
// (wire-shape-reference.ts) over random bytes, random msgpack, command-shaped msgpack with hostile
// values (deep nesting, non-JSON types), and those same bytes with one byte changed, cut short or
// grown.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { wireDepthMax, wireShapeProblem } from '../../src/context/wire-shape.js';
import { blindPoisonArb } from './poison-arbitraries.js';
import { referenceWireShapeProblem } from './wire-shape-reference.js';

type Edit = { readonly how: 'set' | 'cut' | 'insert'; readonly at: number; readonly byte: number };

const edited = (bytes: Uint8Array, { how, at, byte }: Edit): Uint8Array => {
  const index = bytes.length === 0 ? 0 : at % bytes.length;
  if (how === 'cut') return bytes.subarray(0, index);
  if (how === 'set') {
    const copy = Uint8Array.from(bytes);
    if (copy.length > 0) copy[index] = byte;
    return copy;
  }
  return Uint8Array.from([...bytes.subarray(0, index), byte, ...bytes.subarray(index)]);
};

const editArb: fc.Arbitrary<Edit> = fc.record({
  how: fc.constantFrom<Edit['how']>('set', 'cut', 'insert'),
  at: fc.nat(),
  byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf)),
});

const sameAnswer = (bytes: Uint8Array): void => {
  expect(wireShapeProblem(bytes)).toBe(referenceWireShapeProblem(bytes));
};

describe('wireShapeProblem', () => {
  it('answers as the reference scan for random and command-shaped msgpack', () => {
    fc.assert(
      fc.property(blindPoisonArb, (poison) => sameAnswer(poison.bytes.subarray(1))),
      { numRuns: 3_000 },
    );
  });

  it('answers as the reference scan after one byte is changed, cut or inserted', () => {
    fc.assert(
      fc.property(blindPoisonArb, fc.array(editArb, { minLength: 1, maxLength: 3 }), (poison, edits) => {
        let bytes = poison.bytes.subarray(1);
        for (const edit of edits) bytes = edited(bytes, edit);
        sameAnswer(bytes);
      }),
      { numRuns: 3_000 },
    );
  });

  it('answers as the reference scan at the depth bound and for every type byte alone and with a tail', () => {
    for (const depth of [wireDepthMax - 1, wireDepthMax, wireDepthMax + 1]) {
      for (const level of [
        [0x91],
        [0x81, 0xa1, 0x61],
        [0xdc, 0x00, 0x01],
        [0xdf, 0x00, 0x00, 0x00, 0x01, 0xa0],
      ]) {
        const bytes = Uint8Array.from([...Array.from({ length: depth }, () => level).flat(), 0xc0]);
        sameAnswer(bytes);
      }
    }
    for (let type = 0; type < 256; type += 1) {
      sameAnswer(Uint8Array.of(type));
      for (const tail of [
        [0x00],
        [0x00, 0x01],
        [0x00, 0x00, 0x00, 0x01, 0xc0],
        new Array<number>(9).fill(0),
      ]) {
        sameAnswer(Uint8Array.from([type, ...tail]));
        sameAnswer(Uint8Array.from([0x81, 0xa1, 0x6b, type, ...tail]));
        sameAnswer(Uint8Array.from([0x81, type, ...tail]));
      }
    }
  });

  it('accepts a command-sized JSON value and refuses what follows it', () => {
    const value = Uint8Array.from([0x93, 0x01, 0xa1, 0x61, 0x82, 0xa1, 0x62, 0xc3, 0xa1, 0x63, 0x90]);
    expect(wireShapeProblem(value)).toBeUndefined();
    expect(wireShapeProblem(Uint8Array.from([...value, 0xc0]))).toBe('bytes after the value');
    expect(wireShapeProblem(value.subarray(0, 4))).toBe('truncated');
  });
});
