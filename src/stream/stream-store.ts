// The one seam through which a stream reads history: where a context's history stands (to register
// at) and its events after a version, in pages. The local implementation reads this node's replica
// and, when an archive is configured, the appends the archiver trimmed from it (through the same
// ArchiveReader as /messages and /tail): a cursor older than the node's retained history is then
// replayed whole, and only what the archive cannot supply becomes a `gap` item. Without an archive,
// a cursor older than `retainedFromVersion` gets a `gap` frame.

import type { GroupKv } from '../../raft/index.js';
import type { ArchiveReader } from '../context/archive-reader.js';
import type { HistoryPoint, ReplayItem, StreamPosition } from '../context/event-replay.js';
import type { ContextStateMachine } from '../context/state-machine.js';
import { groupOf } from '../context/routing.js';

export { HistoryTrimmedError, isReplayGap } from '../context/event-replay.js';
export type { HistoryPoint, ReplayItem, StreamPosition } from '../context/event-replay.js';

export interface StreamStore {
  /** The group a context lives in (live events are announced per group). */
  groupOf(contextId: string): number;
  /**
   * Where the context's history stands now on this replica; undefined for an unknown context. Its
   * `retainedFromVersion` is the oldest version a replay can start at (1 with an archive).
   */
  position(contextId: string): Promise<StreamPosition | undefined>;
  /**
   * Its events after `after` up to `position`, in stream order, in bounded batches that end between
   * versions, with `gap` items where history could not be read. Throws HistoryTrimmedError when a
   * trim took messages it had not read yet (start again from a new position), and ServiceError
   * archive_unavailable when the archive does not answer.
   */
  replay(
    contextId: string,
    position: StreamPosition,
    after: HistoryPoint,
  ): AsyncIterable<readonly ReplayItem[]>;
}

export const localStreamStore = (options: {
  readonly stateMachine: Pick<ContextStateMachine, 'streamPosition' | 'streamEvents'>;
  readonly groupKv: (group: number) => GroupKv;
  readonly groupCount: number;
  /** The archive the trimmed history is read back from (absent: no read-through, gap frames). */
  readonly archive?: ArchiveReader;
}): StreamStore => {
  const { stateMachine, groupKv, groupCount, archive } = options;
  const group = (contextId: string): number => groupOf(contextId, groupCount);
  return {
    groupOf: group,
    position: async (contextId) => {
      const position = await stateMachine.streamPosition(
        group(contextId),
        groupKv(group(contextId)),
        contextId,
      );
      // With an archive every version can be replayed: the trimmed appends come from it.
      return position === undefined || archive === undefined
        ? position
        : { ...position, retainedFromVersion: 1 };
    },
    replay: (contextId, position, after) =>
      stateMachine.streamEvents(
        group(contextId),
        groupKv(group(contextId)),
        contextId,
        position,
        after,
        archive === undefined
          ? undefined
          : (afterSeq, throughSeq, limit) => archive.readAppends(contextId, afterSeq, throughSeq, limit),
      ),
  };
};
