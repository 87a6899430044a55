// Entries decoded from a frame must not pin the frame: a follower keeps entries in its in-memory
// log until its group compacts, so a view into the received buffer would keep every frame alive
// for as long as any of its entries (memory following history in a cluster with a quiet group).

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../../raft/core/types.js';
import { decodeFrame, encodeFrame } from '../../../raft/transport/codec.js';

describe('frame codec retention', () => {
  it('decodes entry data into buffers of their own, not views into the frame', () => {
    const entries = [0, 1, 2].map((i) => ({
      term: 2,
      index: 5 + i,
      kind: 0 as const,
      data: new Uint8Array(300).fill(i + 1),
    }));
    const bytes = encodeFrame({
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
            entries,
          },
        },
      ],
    });
    // As received from the network: the frame inside a larger buffer.
    const received = Buffer.alloc(bytes.byteLength + 64);
    received.set(bytes, 32);
    const decoded = decodeFrame(received.subarray(32, 32 + bytes.byteLength)).batch[0]?.message.entries ?? [];
    expect(decoded).toHaveLength(3);
    for (const [i, entry] of decoded.entries()) {
      expect(entry.data.constructor).toBe(Uint8Array);
      expect(entry.data.buffer).not.toBe(received.buffer);
      expect(entry.data.buffer.byteLength).toBe(300);
      expect(entry.data.every((byte) => byte === i + 1)).toBe(true);
    }
    // The copies do not alias the received bytes either.
    received.fill(0);
    expect(decoded[0]?.data[0]).toBe(1);
  });
});
