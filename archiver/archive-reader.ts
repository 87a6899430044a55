// The ArchiveReader (src/context/archive-reader.ts) over the archive database: what the export,
// the tail and stream replay read trimmed history through (one query, readArchived). A database
// that does not answer is a retryable 503 archive_unavailable, never a silently shorter history.

import { ServiceError } from '../src/api/errors.js';
import type { ArchiveReader, ArchivedAppend } from '../src/context/archive-reader.js';
import type { Logger } from '../src/telemetry/logger.js';
import type { ArchiveDatabase } from './archive-database.js';
import { readArchived } from './archive-store.js';

export const createArchiveReader = (database: ArchiveDatabase, log: Logger): ArchiveReader => {
  const readAppends = async (
    contextId: string,
    afterSeq: number,
    throughSeq: number,
    limit: number,
  ): Promise<ArchivedAppend[]> => {
    try {
      return await readArchived(database.sql(), contextId, afterSeq, throughSeq, limit);
    } catch (error) {
      log.warn(
        { type: 'archive_read', context_id: contextId, reason: database.describe(error) },
        'archive read failed',
      );
      throw new ServiceError(
        'archive_unavailable',
        'The archive holding this older history is unavailable; retry shortly',
        { retryAfterSeconds: 1 },
      );
    }
  };
  return {
    readAppends,
    readRange: async (contextId, afterSeq, throughSeq, limit) =>
      (await readAppends(contextId, afterSeq, throughSeq, limit)).map((append) => append.message),
  };
};
