// fast-check generators of poison log entries for the context state machine: payloads a committed
// entry could carry that no correct proposer would send. Three families:
// - random bytes, with and without the command format's tag byte;
// - msgpack of random JSON-ish values (and of non-JSON ones msgpackr can encode: bigints, dates,
//   byte arrays), loosely shaped like commands so they get past the first checks;
// - valid commands with one node of their wire form replaced, removed or joined by a hostile value.
//
// Deeply nested values cannot go through msgpackr's encoder (it recurses and overflows the stack
// long before the depths that matter here), so a generator leaves a short marker string in their
// place and `encodePoison` splices the nested bytes in afterwards.

import fc from 'fast-check';
import { encodeTagged, decodeTagged } from '../../src/context/codec.js';
import { commandFormatV1, encodeCommand } from '../../src/context/commands.js';
import type { Command } from '../../src/context/commands.js';

/** Placeholder for an array (or map) nested `depth` levels deep, spliced in by encodePoison. */
const deepMarker = (depth: number, kind: 'a' | 'm'): string => `@@deep:${kind}:${depth}@@`;
const markerPattern = /^@@deep:([am]):(\d+)@@$/;

const deepBytes = (kind: string, depth: number): number[] => {
  const level = kind === 'a' ? [0x91] : [0x81, 0xa1, 0x61];
  const bytes: number[] = [];
  for (let i = 0; i < depth; i++) bytes.push(...level);
  bytes.push(0xc0);
  return bytes;
};

/** `[tag][msgpack(value)]`, with every deep marker string replaced by its nested value. */
export const encodePoison = (value: unknown): Uint8Array => {
  const encoded = Array.from(encodeTagged(commandFormatV1, value));
  const out: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const byte = encoded[i] ?? 0;
    // A fixstr (markers are short ASCII strings) whose text is a marker.
    if ((byte & 0xe0) === 0xa0) {
      const length = byte & 0x1f;
      const text = Buffer.from(encoded.slice(i + 1, i + 1 + length)).toString('latin1');
      const match = markerPattern.exec(text);
      if (match !== null) {
        out.push(...deepBytes(match[1] ?? 'a', Number(match[2])));
        i += length;
        continue;
      }
    }
    out.push(byte);
  }
  return Uint8Array.from(out);
};

/** Values a field of a command could be replaced with. */
export const hostileArb: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<unknown>(
      -1,
      -0,
      0.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** 53,
      2 ** 64,
      Number.MAX_VALUE,
      -(2 ** 31),
      2n ** 64n - 1n,
      -(2n ** 63n),
      '',
      '1',
      '__proto__',
      '\ud800',
      'x'.repeat(65_536),
      null,
      true,
      false,
      [],
      [null],
      [{}],
      [{ type: 5 }],
      [{ type: 'text', n: 2n ** 64n - 1n }],
      {},
      { type: 'text' },
      { big: 2n ** 63n },
      JSON.parse('{"__proto__":{"limit":1,"polluted":true}}') as unknown,
      { constructor: { prototype: { polluted: true } } },
      new Date(0),
      Uint8Array.of(1, 2, 3),
      new Array<number>(5_000).fill(1),
      deepMarker(200, 'a'),
      deepMarker(200, 'm'),
      deepMarker(3_000, 'a'),
      deepMarker(3_000, 'm'),
      deepMarker(20_000, 'a'),
    ),
  },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);

/** Random JSON-ish trees with hostile leaves. */
const jsonishArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileArb,
    fc.jsonValue({ maxDepth: 2 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('__proto__')), tie('value'), {
      maxKeys: 4,
    }),
  ),
})).value;

/** Arrays shaped like a command's wire form: a kind code, then random fields. */
const commandShapedArb: fc.Arbitrary<unknown> = fc
  .tuple(
    fc.oneof(fc.integer({ min: -1, max: 7 }), hostileArb),
    fc.oneof(fc.constantFrom('ctx-a', 'ctx-b', 'ctx-c'), hostileArb),
    fc.oneof(fc.constant('2025-01-01T00:00:00.000Z'), hostileArb),
    fc.array(jsonishArb, { maxLength: 4 }),
  )
  .map(([kind, id, now, rest]) => [kind, id, now, ...rest]);

export interface Poison {
  readonly label: string;
  readonly bytes: Uint8Array;
  /** The group it is proposed to: the target context's, when it came from a command. */
  readonly group: number;
}

const groupArb = fc.constantFrom(0, 1);

/** A path into a wire value: the container and the key or index replaced there. */
type Slot = { readonly parent: unknown[] | Record<string, unknown>; readonly key: string | number };

const slotsOf = (root: unknown): Slot[] => {
  const slots: Slot[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      value.forEach((item: unknown, index) => {
        slots.push({ parent: value, key: index });
        stack.push(item);
      });
    } else if (typeof value === 'object' && value !== null) {
      const object = value as Record<string, unknown>;
      for (const key of Object.keys(object)) {
        slots.push({ parent: object, key });
        stack.push(object[key]);
      }
    }
  }
  return slots;
};

type Mutation = 'replace' | 'remove' | 'add';

/** `command`'s wire form with one node replaced, removed, or a hostile sibling added. */
export const mutateCommand = (command: Command, pick: number, how: Mutation, value: unknown): unknown => {
  const wire = decodeTagged(encodeCommand(command)).value;
  const slots = slotsOf(wire);
  const slot = slots[pick % slots.length];
  if (slot === undefined) return wire;
  const { parent, key } = slot;
  if (Array.isArray(parent)) {
    const index = key as number;
    if (how === 'replace') parent[index] = value;
    else if (how === 'remove') parent.splice(index, 1);
    else parent.push(value);
  } else {
    const name = key as string;
    if (how === 'replace') parent[name] = value;
    else if (how === 'remove') delete parent[name];
    else parent[`${name}_extra`] = value;
  }
  return wire;
};

/** A mutation of a command the caller resolves against its current state. */
export interface CommandMutation {
  readonly pick: number;
  readonly how: Mutation;
  readonly value: unknown;
}

export const commandMutationArb: fc.Arbitrary<CommandMutation> = fc.record({
  pick: fc.nat(),
  how: fc.constantFrom<Mutation>('replace', 'replace', 'replace', 'remove', 'add'),
  value: fc.oneof({ weight: 3, arbitrary: hostileArb }, { weight: 1, arbitrary: jsonishArb }),
});

/** Poison entries that do not depend on the state: random bytes and random msgpack values. */
export const blindPoisonArb: fc.Arbitrary<Poison> = fc.oneof(
  fc
    .record({ bytes: fc.uint8Array({ maxLength: 48 }), group: groupArb })
    .map(({ bytes, group }) => ({ label: 'random bytes', bytes, group })),
  fc
    .record({ bytes: fc.uint8Array({ maxLength: 48 }), group: groupArb })
    .map(({ bytes, group }) => ({ label: 'tagged random bytes', bytes: Uint8Array.of(1, ...bytes), group })),
  fc
    .record({ value: jsonishArb, group: groupArb })
    .map(({ value, group }) => ({ label: 'random msgpack', bytes: encodePoison(value), group })),
  fc
    .record({ value: commandShapedArb, group: groupArb })
    .map(({ value, group }) => ({ label: 'command-shaped msgpack', bytes: encodePoison(value), group })),
);
