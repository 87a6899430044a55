// Proves the wire codec round-trips every Raft message type, frame and snapshot chunk exactly
// (fast-check over arbitrary field subsets), that it refuses malformed or foreign-version bytes
// with a CodecError, and that coalesced heartbeats stay a few bytes each.

import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../../raft/core/types.js';
import type { GroupMessage } from '../../../raft/api.js';
import {
  CODEC_VERSION,
  CodecError,
  decodeFrame,
  decodeSnapshotAnswer,
  decodeSnapshotChunk,
  encodeFrame,
  encodeSnapshotAnswer,
  encodeSnapshotChunk,
} from '../../../raft/transport/codec.js';
import { groupMessageArb, nodeIdArb, snapshotChunkArb } from './arbitraries.js';

const frameArb = fc
  .tuple(nodeIdArb, nodeIdArb)
  .chain(([from, to]) =>
    fc.record({ from: fc.constant(from), to: fc.constant(to), batch: fc.array(groupMessageArb(from, to)) }),
  );

describe('frame codec', () => {
  it.each(Object.entries(MessageType))('round-trips %s messages with any optional fields', (_name, type) => {
    fc.assert(
      fc.property(
        fc.tuple(nodeIdArb, nodeIdArb).chain(([from, to]) =>
          fc.record({
            from: fc.constant(from),
            to: fc.constant(to),
            batch: fc.array(groupMessageArb(from, to, type), { minLength: 1, maxLength: 8 }),
          }),
        ),
        (frame) => {
          expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('round-trips frames mixing every type, preserving order', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const decoded = decodeFrame(encodeFrame(frame));
        expect(decoded).toEqual(frame);
        expect(decoded.batch.map((m) => m.message.type)).toEqual(frame.batch.map((m) => m.message.type));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes entry data as plain Uint8Arrays', () => {
    const data = new Uint8Array([7, 8, 9]);
    const frame = {
      from: 'a',
      to: 'b',
      batch: [
        {
          group: 3,
          message: {
            type: MessageType.App,
            from: 'a',
            to: 'b',
            term: 2,
            index: 4,
            logTerm: 1,
            commit: 4,
            entries: [{ term: 2, index: 5, kind: 0 as const, data }],
          },
        },
      ],
    };
    const entry = decodeFrame(encodeFrame(frame)).batch[0]?.message.entries?.[0];
    expect(entry?.data.constructor).toBe(Uint8Array);
    expect(Array.from(entry?.data ?? [])).toEqual([7, 8, 9]);
  });

  it('encodes 256 coalesced heartbeats in under 16 bytes each', () => {
    const from = '6f1c2d1e-6a1b-4f7e-9a57-1f9f7a3c2b10';
    const to = '0b7b3f0e-2f43-4b8e-a4c5-2a6d9d3e4f21';
    const batch: GroupMessage[] = Array.from({ length: 256 }, (_, group) => ({
      group,
      message: { type: MessageType.Heartbeat, from, to, term: 12, commit: 100_000 + group, context: 0 },
    }));
    const bytes = encodeFrame({ from, to, batch });
    expect(bytes.byteLength).toBeLessThan(256 * 16);
    expect(decodeFrame(bytes).batch).toEqual(batch);
  });

  it('refuses garbage, truncation, wrong shapes and other versions with CodecError', () => {
    const packr = new Packr({ useRecords: false });
    const good = encodeFrame({
      from: 'a',
      to: 'b',
      batch: [
        { group: 1, message: { type: MessageType.Vote, from: 'a', to: 'b', term: 3, index: 2, logTerm: 1 } },
      ],
    });
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1]),
      good.subarray(0, good.byteLength - 2),
      packr.pack({ not: 'a frame' }),
      packr.pack([CODEC_VERSION + 1, 'a', 'b', []]),
      packr.pack([CODEC_VERSION, 'a', 'b', [[1, 99, 3, 0]]]),
      packr.pack([CODEC_VERSION, 'a', 'b', [[1, MessageType.Heartbeat, 3, 1]]]),
      packr.pack([CODEC_VERSION, 'a', 'b', [[1, MessageType.Heartbeat, 3, 0, 'extra']]]),
      packr.pack([CODEC_VERSION, 'a', 'b', [[1, MessageType.Heartbeat, 'three', 0]]]),
    ];
    for (const bytes of bad) expect(() => decodeFrame(bytes), String(bytes)).toThrow(CodecError);
  });

  it('never throws anything but CodecError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeFrame(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(CodecError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('snapshot codec', () => {
  it('round-trips chunks', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(nodeIdArb, nodeIdArb)
          .chain(([from, to]) => fc.tuple(fc.constant(from), snapshotChunkArb(from, to))),
        ([from, chunk]) => {
          expect(decodeSnapshotChunk(encodeSnapshotChunk(from, chunk))).toEqual({ from, chunk });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('round-trips answers', () => {
    expect(decodeSnapshotAnswer(encodeSnapshotAnswer(true))).toBe(true);
    expect(decodeSnapshotAnswer(encodeSnapshotAnswer(false))).toBe(false);
    expect(() => decodeSnapshotAnswer(new Uint8Array([0x90]))).toThrow(CodecError);
  });
});
