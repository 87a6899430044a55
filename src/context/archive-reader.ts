// The seam through which the history trimmed from the hot tail is read back: the archive
// (archiver/archive-reader.ts implements it over Postgres). The export and tail reads use it
// (read-through.ts); a stream replay reads the same rows with the events each append produced
// (event-replay.ts), up to the trim point its StreamPosition names.

import type { StoredMessage } from '../api/domain.js';
import type { CompactionEvent, ContextChangeEvent } from './events.js';

/** One archived append: its message and the stream events it produced, as the store held them. */
export interface ArchivedAppend {
  readonly message: StoredMessage;
  /** The context version the append produced. */
  readonly version: number;
  /** The policy run the append triggered, if any. */
  readonly compaction?: CompactionEvent;
  /** The window change the append reported, if any. */
  readonly windowChange?: ContextChangeEvent;
  /**
   * False for a row archived before the archive kept window changes (schema version 1): whether
   * its append reported one is unknown, so a stream cannot replay its version whole.
   */
  readonly eventsComplete: boolean;
}

export interface ArchiveReader {
  /**
   * Archived messages of a context with afterSeq < seq <= throughSeq, ascending, at most `limit`.
   * Throws ServiceError archive_unavailable when the archive cannot be read.
   */
  readRange(
    contextId: string,
    afterSeq: number,
    throughSeq: number,
    limit: number,
  ): Promise<readonly StoredMessage[]>;
  /** The same rows with their versions and events (stream replay). Throws as readRange does. */
  readAppends(
    contextId: string,
    afterSeq: number,
    throughSeq: number,
    limit: number,
  ): Promise<readonly ArchivedAppend[]>;
}
