// Reads of a context's whole history across the trim point: messages 1..trimmedThroughSeq are only
// in the archive (ArchiveReader), the rest in the store. The export and the tail stitch the two into
// one continuous, ascending run, as if nothing had been trimmed.
//
// A trim can apply between reading where the store starts and reading the store; the stitched page
// would then have a hole. Each read checks that the store's part starts exactly where it expected
// and starts over (with the new trim point) when it does not.

import type { GroupKv } from '../../raft/index.js';
import type { MessagesPage, StoredMessage } from '../api/domain.js';
import { ServiceError } from '../api/errors.js';
import type { ArchiveReader } from './archive-reader.js';
import type { ContextStateMachine } from './state-machine.js';

type Reads = Pick<ContextStateMachine, 'messages' | 'tail' | 'tailBounds'>;

const attemptsMax = 4;

const raced = (what: string): Error =>
  new Error(`${what}: the hot tail was trimmed under ${attemptsMax} consecutive reads`);

/** The contiguous run of `messages` starting at seq `from`. */
const contiguousFrom = (messages: readonly StoredMessage[], from: number): StoredMessage[] => {
  let count = 0;
  while (count < messages.length && messages[count]?.seq === from + count) count += 1;
  return messages.slice(0, count);
};

/** Export: messages with seq > fromSeq, ascending, at most `limit`; undefined for unknown ids. */
export const readMessages = async (
  reads: Reads,
  archive: ArchiveReader | undefined,
  group: number,
  kv: GroupKv,
  id: string,
  fromSeq: number,
  limit: number,
): Promise<MessagesPage | undefined> => {
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const bounds = await reads.tailBounds(group, kv, id);
    if (bounds === undefined) return undefined;
    const trimmed = bounds.trimmedThroughSeq;
    // Without an archive the trimmed history cannot be read: the export starts where the store does.
    const start = archive === undefined ? Math.max(fromSeq, trimmed) : fromSeq;
    if (start >= trimmed) {
      const page = await reads.messages(group, kv, id, start, limit);
      if (page === undefined) return undefined;
      const first = page.messages[0];
      if (first !== undefined && first.seq !== start + 1) continue; // trimmed meanwhile
      return page;
    }
    if (archive === undefined) throw new Error('unreachable: no archive below the trim point');
    const throughSeq = Math.min(trimmed, start + limit);
    const cold = contiguousFrom(
      await archive.readRange(id, start, throughSeq, throughSeq - start),
      start + 1,
    );
    const coldLast = cold[cold.length - 1]?.seq;
    if (coldLast === undefined) {
      throw new ServiceError(
        'archive_unavailable',
        `The archive lacks message ${start + 1} of this context; retry shortly`,
        { retryAfterSeconds: 1 },
      );
    }
    const room = limit - cold.length;
    if (coldLast < throughSeq || room === 0 || coldLast >= bounds.lastSeq) {
      return coldLast < bounds.lastSeq ? { messages: cold, next_from_seq: coldLast } : { messages: cold };
    }
    const hot = await reads.messages(group, kv, id, trimmed, room);
    if (hot === undefined) return undefined;
    const first = hot.messages[0];
    if (first !== undefined && first.seq !== trimmed + 1) continue;
    const messages = [...cold, ...hot.messages];
    return hot.next_from_seq === undefined ? { messages } : { messages, next_from_seq: hot.next_from_seq };
  }
  throw raced(`export of ${id}`);
};

/** Tail: skips `offset` newest messages, returns the next `limit`, oldest first. */
export const readTail = async (
  reads: Reads,
  archive: ArchiveReader | undefined,
  group: number,
  kv: GroupKv,
  id: string,
  limit: number,
  offset: number,
): Promise<StoredMessage[]> => {
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const bounds = await reads.tailBounds(group, kv, id);
    if (bounds === undefined) return [];
    const trimmed = bounds.trimmedThroughSeq;
    const toSeq = bounds.lastSeq - offset;
    if (toSeq < 1) return [];
    const fromSeq = Math.max(1, toSeq - limit + 1);
    // Nothing trimmed in range, or no archive to read it from: the store's messages alone.
    if (archive === undefined || fromSeq > trimmed) return reads.tail(group, kv, id, limit, offset);
    const hot = toSeq > trimmed ? await reads.tail(group, kv, id, toSeq - trimmed, offset) : [];
    const first = hot[0];
    if (first !== undefined && first.seq !== trimmed + 1) {
      // The page budget stopped the store's read (the newest messages are large), or a trim or an
      // append raced it: the first answers with what fits, the others read again.
      const now = await reads.tailBounds(group, kv, id);
      if (now?.trimmedThroughSeq === trimmed && now.lastSeq === bounds.lastSeq) return hot;
      continue;
    }
    const throughSeq = Math.min(trimmed, toSeq);
    const cold = contiguousFrom(
      await archive.readRange(id, fromSeq - 1, throughSeq, throughSeq - fromSeq + 1),
      fromSeq,
    );
    // Only a run that ends where the store's part begins: a tail never has a hole.
    if (cold.length !== throughSeq - fromSeq + 1) {
      throw new ServiceError('archive_unavailable', 'The archive lacks part of this history; retry shortly', {
        retryAfterSeconds: 1,
      });
    }
    return [...cold, ...hot];
  }
  throw raced(`tail of ${id}`);
};
