// The ArchiveReader (src/context/archive-reader.ts) over the archive database: what the export,
// the tail and stream replay read trimmed history through (one query, readArchived). A database
// that does not answer is a retryable 503 archive_unavailable, never a silently shorter history;
// one that hangs (a black-holed network) is the same after `readTimeoutMs`, so a read, and a stream
// replaying archived history, never waits on it without bound.

import { ServiceError } from '../src/api/errors.js';
import type { ArchiveReader, ArchivedAppend } from '../src/context/archive-reader.js';
import type { Logger } from '../src/telemetry/logger.js';
import type { ArchiveDatabase } from './archive-database.js';
import { readArchived } from './archive-store.js';

/** Longest wait for one archive read (the pool's connect timeout is 5 s). */
export const archiveReadTimeoutMs = 10_000;

class ReadTimeout extends Error {
  override readonly name = 'ReadTimeout';
}

/** `promise`, or a ReadTimeout after `ms` (the read itself is abandoned, its outcome ignored). */
const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ReadTimeout(`archive read took over ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });

export const createArchiveReader = (
  database: ArchiveDatabase,
  log: Logger,
  readTimeoutMs = archiveReadTimeoutMs,
): ArchiveReader => {
  const readAppends = async (
    contextId: string,
    afterSeq: number,
    throughSeq: number,
    limit: number,
  ): Promise<ArchivedAppend[]> => {
    try {
      return await within(
        readArchived(database.sql(), contextId, afterSeq, throughSeq, limit),
        readTimeoutMs,
      );
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
