// The msgpack a command may contain, checked on the raw bytes before msgpackr decodes them.
//
// A committed entry is applied by every replica, so whatever its bytes hold must decode the same
// way everywhere and to values the state machine can handle. msgpackr alone does not ensure that:
// - it decodes recursively, so a deeply nested value overflows the stack at a depth that depends on
//   the stack the decode happens to run on (it may decode on one replica and not on another), and
//   a shallower one still overflows the recursive walks later in apply (JSON.stringify, the
//   record encoder);
// - it turns some types into values that are not JSON: bigints (uint64/int64), Uint8Array (bin),
//   Date, Error and others (ext types), and map keys that are not strings.
// What our own encoder emits for a command is a JSON value: nil, booleans, integers up to 32 bits
// and float64 (msgpackr writes every other number as float64), strings, arrays and maps with
// string keys. This scan accepts exactly that, nested at most `wireDepthMax` deep, as one value
// that fills the buffer. It is iterative: it cannot overflow, whatever the input.

/**
 * Deepest nesting a command may have. The gateway refuses parts and metadata nested deeper than 64
 * (RequestLimits.jsonDepthMax), which sit at most 5 levels down in a command (compact: command,
 * replacement, message, parts, part), and it drops every other free-form field. 128 leaves room
 * above that and stays far below the depths at which the recursive code overflows (over 1,000).
 */
export const wireDepthMax = 128;

/** Why bytes are not a command's msgpack, or undefined when they are. */
export const wireShapeProblem = (bytes: Uint8Array): string | undefined => {
  // This runs on every applied entry, so it allocates nothing per value: no closure, no object per
  // container (it was an eighth of an append's garbage). Per open container, `lefts` holds the values
  // still to read in it (a map counts keys and values) and `maps` whether it is a map.
  const lefts: number[] = [];
  const maps: boolean[] = [];
  const end = bytes.length;
  let offset = 0;
  let values = 1; // at the top level: exactly one
  while (values > 0 || lefts.length > 0) {
    const depth = lefts.length;
    let expectKey = false;
    if (depth > 0) {
      const left = lefts[depth - 1] ?? 0;
      if (left === 0) {
        lefts.pop();
        maps.pop();
        continue;
      }
      expectKey = maps[depth - 1] === true && left % 2 === 0;
      lefts[depth - 1] = left - 1;
    } else {
      values -= 1;
    }
    if (offset >= end) return 'truncated';
    const type = bytes[offset] ?? 0;
    offset += 1;
    const isString = (type >= 0xa0 && type <= 0xbf) || (type >= 0xd9 && type <= 0xdb);
    // msgpackr would stringify a number key and refuse others; a JSON object has string keys.
    if (expectKey && !isString) return 'map key is not a string';
    if (type <= 0x7f || type >= 0xe0) continue; // positive and negative fixint
    if (type >= 0xa0 && type <= 0xbf) {
      offset += type & 0x1f;
      if (offset > end) return 'truncated string';
      continue;
    }
    let entries: number; // of the container this type opens
    let map: boolean;
    if (type >= 0x80 && type <= 0x8f) {
      entries = type & 0x0f;
      map = true;
    } else if (type >= 0x90 && type <= 0x9f) {
      entries = type & 0x0f;
      map = false;
    } else {
      const form = fixedForms[type];
      if (form === undefined) {
        // bin, ext, fixext, uint64/int64 and the unused 0xc1: never written for a JSON value.
        return `msgpack type 0x${type.toString(16)} is not JSON`;
      }
      if (offset + form.size > end) return form.truncated;
      if (form.kind === 'fixed') {
        offset += form.size;
        continue;
      }
      const length = readLength(bytes, offset, form.size);
      offset += form.size;
      if (form.kind === 'string') {
        offset += length;
        if (offset > end) return 'truncated string';
        continue;
      }
      entries = length;
      map = form.kind === 'map';
    }
    if (lefts.length >= wireDepthMax) return `nested deeper than ${wireDepthMax}`;
    const left = map ? entries * 2 : entries;
    // Every value takes a byte at least: a count beyond the bytes left is a lie.
    if (left > end - offset) return 'truncated container';
    lefts.push(left);
    maps.push(map);
  }
  return offset === end ? undefined : 'bytes after the value';
};

/**
 * The types that are neither fix-sized nor refused: `size` bytes follow the type byte, either the
 * whole value (`fixed`) or a big-endian length or count.
 */
interface Form {
  readonly kind: 'fixed' | 'string' | 'array' | 'map';
  readonly size: 0 | 1 | 2 | 4 | 8;
  readonly truncated: string;
}

const fixed = (size: Form['size']): Form => ({ kind: 'fixed', size, truncated: 'truncated number' });
const sized = (kind: 'string' | 'array' | 'map', size: Form['size']): Form => ({
  kind,
  size,
  truncated: `truncated ${kind}`,
});
const nothing: Form = { kind: 'fixed', size: 0, truncated: 'truncated' };

const formsByType: Readonly<Partial<Record<number, Form>>> = {
  0xc0: nothing, // nil
  0xc2: nothing, // false
  0xc3: nothing, // true
  0xcc: fixed(1), // uint8
  0xd0: fixed(1), // int8
  0xcd: fixed(2), // uint16
  0xd1: fixed(2), // int16
  0xce: fixed(4), // uint32
  0xd2: fixed(4), // int32
  0xca: fixed(4), // float32
  0xcb: fixed(8), // float64
  0xd9: sized('string', 1), // str8
  0xda: sized('string', 2), // str16
  0xdb: sized('string', 4), // str32
  0xdc: sized('array', 2), // array16
  0xdd: sized('array', 4), // array32
  0xde: sized('map', 2), // map16
  0xdf: sized('map', 4), // map32
};

/** formsByType as a dense array indexed by the type byte (a lookup per value). */
const fixedForms: readonly (Form | undefined)[] = Array.from({ length: 256 }, (_, type) => formsByType[type]);

/** The big-endian unsigned integer of `size` (1, 2 or 4) bytes at `offset`. */
const readLength = (bytes: Uint8Array, offset: number, size: number): number => {
  let value = 0;
  for (let i = 0; i < size; i += 1) value = value * 256 + (bytes[offset + i] ?? 0);
  return value;
};
