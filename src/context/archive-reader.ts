// The seam through which the history trimmed from the hot tail is read back: the archive
// (archiver/archive-reader.ts implements it over Postgres). The export and tail reads use it
// (read-through.ts); a stream replay that meets a trimmed range can use it the same way, with
// tailBounds (state-machine.ts) telling where the stored history starts.

import type { StoredMessage } from '../api/domain.js';

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
}
