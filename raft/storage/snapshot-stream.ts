// Streaming a group's snapshot: its whole `[0x80][group]` space read through one point-in-time
// iterator, cut into chunks of about `chunkBytesMax`. The first key of the space is the applied-state
// record, so the snapshot's metadata (index, term, membership) describes exactly the pairs sent.

import type { SnapshotChunk } from '../api.js';
import type { GroupId, Message } from '../core/types.js';
import { APPLIED_STATE_TAG, groupSpacePrefix } from './keys.js';
import { decodeAppliedState } from './record-codec.js';

export const SNAPSHOT_CHUNK_BYTES_MAX = 1024 * 1024;

const PREFIX_BYTES = groupSpacePrefix(0).length;

/**
 * Chunks of `pairs` (full keys of the group's space, in order) with keys made relative to
 * `[0x80][group]`. Every chunk carries `message` with its `snapshot` set from the applied-state record.
 */
export const snapshotChunks = async function* (
  group: GroupId,
  message: Message,
  pairs: AsyncIterable<readonly [Uint8Array, Uint8Array]>,
  chunkBytesMax = SNAPSHOT_CHUNK_BYTES_MAX,
): AsyncGenerator<SnapshotChunk> {
  let snapMessage: Message | undefined;
  let chunk: (readonly [Uint8Array, Uint8Array])[] = [];
  let chunkBytes = 0;
  let seq = 0;
  for await (const [key, value] of pairs) {
    const relative = key.subarray(PREFIX_BYTES);
    if (snapMessage === undefined) {
      if (relative.length !== 1 || relative[0] !== APPLIED_STATE_TAG) {
        throw new Error(`group ${group}: snapshot space does not start with its applied state`);
      }
      snapMessage = { ...message, snapshot: decodeAppliedState(value) };
    }
    const pairBytes = relative.length + value.length;
    if (chunk.length > 0 && chunkBytes + pairBytes > chunkBytesMax) {
      yield { group, message: snapMessage, seq, pairs: chunk, last: false };
      seq += 1;
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push([relative, value]);
    chunkBytes += pairBytes;
  }
  if (snapMessage === undefined) throw new Error(`group ${group}: no applied state to snapshot`);
  yield { group, message: snapMessage, seq, pairs: chunk, last: true };
};
