// The scan of a command's msgpack as it was before it stopped allocating per value (commit 505c4ec),
// kept verbatim as the reference the current one is checked against (wire-shape.property.test.ts):
// both must name the same problem, or none, for any bytes.

import { wireDepthMax } from '../../src/context/wire-shape.js';

export const referenceWireShapeProblem = (bytes: Uint8Array): string | undefined => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  // Per open container: values still to read in it (a map counts keys and values), and whether the
  // next one is a map key.
  const open: { left: number; readonly map: boolean }[] = [];
  let values = 1; // at the top level: exactly one
  while (values > 0 || open.length > 0) {
    const top = open[open.length - 1];
    if (top !== undefined && top.left === 0) {
      open.pop();
      continue;
    }
    const expectKey = top !== undefined && top.map && top.left % 2 === 0;
    if (top !== undefined) top.left -= 1;
    else values -= 1;
    if (offset >= bytes.length) return 'truncated';
    const type = bytes[offset] ?? 0;
    offset += 1;
    const need = (count: number): boolean => offset + count <= bytes.length;
    const string = (length: number): string | undefined => {
      if (!need(length)) return 'truncated string';
      offset += length;
      return undefined;
    };
    const container = (count: number, map: boolean): string | undefined => {
      if (open.length >= wireDepthMax) return `nested deeper than ${wireDepthMax}`;
      const left = map ? count * 2 : count;
      // Every value takes a byte at least: a count beyond the bytes left is a lie.
      if (left > bytes.length - offset) return 'truncated container';
      open.push({ left, map });
      return undefined;
    };
    const isString = (type >= 0xa0 && type <= 0xbf) || (type >= 0xd9 && type <= 0xdb);
    let problem: string | undefined;
    if (expectKey && !isString) {
      // msgpackr would stringify a number key and refuse others; a JSON object has string keys.
      problem = 'map key is not a string';
    } else if (type <= 0x7f || type >= 0xe0) {
      // positive and negative fixint
    } else if (type >= 0xa0 && type <= 0xbf) {
      problem = string(type & 0x1f);
    } else if (type >= 0x80 && type <= 0x8f) {
      problem = container(type & 0x0f, true);
    } else if (type >= 0x90 && type <= 0x9f) {
      problem = container(type & 0x0f, false);
    } else {
      switch (type) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xcc: // uint8
        case 0xd0: // int8
          problem = need(1) ? undefined : 'truncated number';
          offset += 1;
          break;
        case 0xcd: // uint16
        case 0xd1: // int16
          problem = need(2) ? undefined : 'truncated number';
          offset += 2;
          break;
        case 0xce: // uint32
        case 0xd2: // int32
        case 0xca: // float32
          problem = need(4) ? undefined : 'truncated number';
          offset += 4;
          break;
        case 0xcb: // float64
          problem = need(8) ? undefined : 'truncated number';
          offset += 8;
          break;
        case 0xd9: // str8
          problem = need(1) ? string(view.getUint8(offset++)) : 'truncated string';
          break;
        case 0xda: // str16
          problem = need(2) ? string(view.getUint16((offset += 2) - 2)) : 'truncated string';
          break;
        case 0xdb: // str32
          problem = need(4) ? string(view.getUint32((offset += 4) - 4)) : 'truncated string';
          break;
        case 0xdc: // array16
          problem = need(2) ? container(view.getUint16((offset += 2) - 2), false) : 'truncated array';
          break;
        case 0xdd: // array32
          problem = need(4) ? container(view.getUint32((offset += 4) - 4), false) : 'truncated array';
          break;
        case 0xde: // map16
          problem = need(2) ? container(view.getUint16((offset += 2) - 2), true) : 'truncated map';
          break;
        case 0xdf: // map32
          problem = need(4) ? container(view.getUint32((offset += 4) - 4), true) : 'truncated map';
          break;
        default:
          // bin, ext, fixext, uint64/int64 and the unused 0xc1: never written for a JSON value.
          problem = `msgpack type 0x${type.toString(16)} is not JSON`;
      }
    }
    if (problem !== undefined) return problem;
  }
  return offset === bytes.length ? undefined : 'bytes after the value';
};
