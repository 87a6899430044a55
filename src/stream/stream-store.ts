// The one seam through which a stream reads history: where a context's history stands (to register
// at) and its events after a version, in pages. The local implementation reads this node's replica;
// the archiver can back the same interface with Postgres for history trimmed from the node (until
// then a cursor older than `retainedFromVersion` gets a `gap` frame).

import type { GroupKv } from '../../raft/index.js';
import type { HistoryPoint, ReplayedEvent, StreamPosition } from '../context/event-replay.js';
import type { ContextStateMachine } from '../context/state-machine.js';
import { groupOf } from '../context/routing.js';

export type { HistoryPoint, ReplayedEvent, StreamPosition } from '../context/event-replay.js';

export interface StreamStore {
  /** The group a context lives in (live events are announced per group). */
  groupOf(contextId: string): number;
  /** Where the context's history stands now on this replica; undefined for an unknown context. */
  position(contextId: string): Promise<StreamPosition | undefined>;
  /** Its events after `after` up to `position`, in stream order, in bounded batches. */
  replay(
    contextId: string,
    position: StreamPosition,
    after: HistoryPoint,
  ): AsyncIterable<readonly ReplayedEvent[]>;
}

export const localStreamStore = (options: {
  readonly stateMachine: Pick<ContextStateMachine, 'streamPosition' | 'streamEvents'>;
  readonly groupKv: (group: number) => GroupKv;
  readonly groupCount: number;
}): StreamStore => {
  const { stateMachine, groupKv, groupCount } = options;
  const group = (contextId: string): number => groupOf(contextId, groupCount);
  return {
    groupOf: group,
    position: (contextId) =>
      stateMachine.streamPosition(group(contextId), groupKv(group(contextId)), contextId),
    replay: (contextId, position, after) =>
      stateMachine.streamEvents(group(contextId), groupKv(group(contextId)), contextId, position, after),
  };
};
