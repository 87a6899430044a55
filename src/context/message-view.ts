// How stored records look to readers: the wire shape of a message, and a message seen through a
// skip_parts filter (its parts minus the filtered kinds, its count the sum of the kept parts).

import type { MessagePart, StoredMessage } from '../api/domain.js';
import type { MessageRecord, SummaryRecord } from './records.js';

/** Sequence number reported for summary messages: they stand for a range, not one appended message. */
export const summarySeq = 0;

export interface PartsView {
  readonly parts: readonly MessagePart[];
  readonly partTokens: readonly number[];
  readonly tokens: number;
}

const removedBy = (part: MessagePart, kinds: readonly string[]): boolean =>
  kinds.some((kind) => part.type.startsWith(kind));

/** The parts `kinds` leaves (all of them for no kinds); the count is the sum of the kept parts'. */
export const filterParts = (
  record: {
    readonly parts: readonly MessagePart[];
    readonly partTokens: readonly number[];
    readonly tokenCount: number;
  },
  kinds: readonly string[],
): PartsView => {
  if (kinds.length === 0)
    return { parts: record.parts, partTokens: record.partTokens, tokens: record.tokenCount };
  const parts: MessagePart[] = [];
  const partTokens: number[] = [];
  let tokens = 0;
  record.parts.forEach((part, index) => {
    if (removedBy(part, kinds)) return;
    const partCount = record.partTokens[index] ?? 0;
    parts.push(part);
    partTokens.push(partCount);
    tokens += partCount;
  });
  return { parts, partTokens, tokens };
};

/** The view of appended message `seq` in the window, given the window's filter state. */
export const windowView = (
  record: MessageRecord,
  seq: number,
  filteredThroughSeq: number,
  filterKinds: readonly string[],
): PartsView => filterParts(record, seq <= filteredThroughSeq ? filterKinds : []);

export const defaultMessageId = (contextId: string, seq: number): string => `${contextId}:${seq}`;

export const storedMessage = (
  contextId: string,
  seq: number,
  record: MessageRecord,
  view: PartsView = filterParts(record, []),
): StoredMessage => ({
  id: record.clientId ?? defaultMessageId(contextId, seq),
  seq,
  role: record.role,
  parts: view.parts,
  metadata: record.metadata ?? {},
  token_count: view.tokens,
  inserted_at: record.insertedAt,
});

export const storedSummaryMessage = (record: SummaryRecord): StoredMessage => ({
  id: record.id,
  seq: summarySeq,
  role: record.role,
  parts: record.parts,
  metadata: record.metadata ?? {},
  token_count: record.tokenCount,
  inserted_at: record.insertedAt,
});
