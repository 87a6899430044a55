// The archive's rows: batched idempotent inserts of messages, upserts of the contexts table, and
// reads of archived messages back in the API's shape. One statement per batch whatever its size: the
// messages travel as one JSON document (json_to_recordset), the cheapest encoding for the node (one
// native JSON.stringify), and the contexts as one array parameter per column (unnest).
//
// PostgreSQL stores neither NUL characters (in text or jsonb) nor unpaired UTF-16 surrogates (in
// jsonb), both of which a message may hold: one such row would fail its whole batch again and again,
// and archiving would stop for good. They are archived as U+FFFD instead (pgSafe).

import type { ContextView, JsonObject, MessagePart } from '../src/api/domain.js';
import type { ArchivedAppend } from '../src/context/archive-reader.js';
import type { CompactionEvent, ContextChangeEvent } from '../src/context/events.js';
import type { ArchiveRow } from '../src/context/state-machine.js';
import type { Sql, TransactionSql } from './database.js';

/** Messages of one context, contiguous and ascending, and the context as it stood when they were read. */
export interface ContextBatch {
  readonly contextId: string;
  readonly rows: readonly ArchiveRow[];
  readonly context: ContextView;
}

/**
 * Writes the batches in one transaction: messages with ON CONFLICT DO NOTHING (a batch written
 * again after a crash or a leader change adds nothing), and each context's row with archived_seq
 * at the last message written. Returns the rows actually inserted.
 */
export const writeBatches = async (sql: Sql, batches: readonly ContextBatch[]): Promise<number> =>
  sql.begin(async (tx) => {
    const inserted = await insertMessages(tx, batches);
    await upsertContexts(tx, batches);
    return inserted;
  });

const insertMessages = async (tx: TransactionSql, batches: readonly ContextBatch[]): Promise<number> => {
  const records = batches.flatMap(({ contextId, rows }) =>
    rows.map(({ message, version, compaction, windowChange }) => ({
      context_id: contextId,
      seq: message.seq,
      id: message.id,
      role: message.role,
      parts: message.parts,
      metadata: message.metadata,
      token_count: message.token_count,
      inserted_at: message.inserted_at,
      version,
      compaction: compaction ?? null,
      window_change: windowChange ?? null,
    })),
  );
  if (records.length === 0) return 0;
  // The whole batch as one JSON document: one native JSON.stringify here, one parse in PostgreSQL.
  const result = await tx`
    INSERT INTO messages (context_id, seq, id, role, parts, metadata, token_count, inserted_at, version,
      compaction, window_change, events_complete)
    SELECT context_id, seq, id, role, parts, metadata, token_count, inserted_at, version, compaction,
      window_change, true
    FROM json_to_recordset(${pgSafeJson(records)}::text::json) AS r(
      context_id text, seq bigint, id text, role text, parts jsonb, metadata jsonb, token_count bigint,
      inserted_at timestamptz, version bigint, compaction jsonb, window_change jsonb)
    ON CONFLICT (context_id, seq) DO NOTHING`;
  return result.count;
};

const replacement = '\ufffd';

// NUL is matched on purpose: PostgreSQL refuses it.
// eslint-disable-next-line no-control-regex
const unsafeText = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with NUL and unpaired surrogates replaced: what PostgreSQL can store. */
export const pgSafeText = (text: string): string => text.replace(unsafeText, replacement);

/**
 * A JSON value with every string (keys too) made pgSafeText (depth is bounded upstream): the
 * definition pgSafeJson's fast path must match.
 */
export const pgSafeValue = (value: unknown): unknown => {
  if (typeof value === 'string') return pgSafeText(value);
  if (Array.isArray(value)) return value.map(pgSafeValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [pgSafeText(key), pgSafeValue(inner)]),
    );
  }
  return value;
};

/** JSON text jsonb accepts: the common case is one JSON.stringify and one substring search. */
export const pgSafeJson = (value: unknown): string => {
  const text = JSON.stringify(value);
  // JSON.stringify escapes NUL as \u0000 and unpaired surrogates as \udXXX; both are rare. Most
  // batches hold no `\u` at all, and a native substring search for it is over ten times cheaper
  // than the regex on a batch of megabytes (the regex alone was 2 % of an archiving node's main
  // thread). A `\u` that is neither (another control character, a literal backslash-u in the text)
  // only costs the regex.
  if (!text.includes('\\u')) return text;
  return /\\u(0000|d[89a-f])/i.test(text) ? JSON.stringify(pgSafeValue(value)) : text;
};

const upsertContexts = async (tx: TransactionSql, batches: readonly ContextBatch[]): Promise<void> => {
  if (batches.length === 0) return;
  const rows = batches.map(({ context, rows: written }) => ({
    ...context,
    archived_seq: Math.max(context.archived_seq, written[written.length - 1]?.message.seq ?? 0),
  }));
  // A stale writer (a deposed leader finishing a batch) must not move a row backwards.
  await tx`
    INSERT INTO contexts (id, status, token_budget, trigger_ratio, policy, metadata, version, last_seq,
      archived_seq, created_at, updated_at)
    SELECT * FROM unnest(
      ${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.status)}::text[],
      ${rows.map((r) => r.token_budget)}::bigint[], ${rows.map((r) => r.trigger_ratio)}::float8[],
      ${rows.map((r) => pgSafeJson(r.policy))}::text[]::jsonb[],
      ${rows.map((r) => pgSafeJson(r.metadata))}::text[]::jsonb[],
      ${rows.map((r) => r.version)}::bigint[], ${rows.map((r) => r.last_seq)}::bigint[],
      ${rows.map((r) => r.archived_seq)}::bigint[], ${rows.map((r) => r.created_at)}::timestamptz[],
      ${rows.map((r) => r.updated_at)}::timestamptz[]
    )
    ON CONFLICT (id) DO UPDATE SET
      status = EXCLUDED.status, token_budget = EXCLUDED.token_budget,
      trigger_ratio = EXCLUDED.trigger_ratio, policy = EXCLUDED.policy, metadata = EXCLUDED.metadata,
      version = EXCLUDED.version, last_seq = EXCLUDED.last_seq,
      archived_seq = GREATEST(contexts.archived_seq, EXCLUDED.archived_seq),
      updated_at = EXCLUDED.updated_at, synced_at = now()
    WHERE (contexts.last_seq, contexts.version, contexts.updated_at)
      <= (EXCLUDED.last_seq, EXCLUDED.version, EXCLUDED.updated_at)`;
};

interface MessageRowOut {
  readonly seq: string;
  readonly id: string;
  readonly role: string;
  readonly parts: readonly MessagePart[];
  readonly metadata: JsonObject;
  readonly token_count: string;
  readonly inserted_at: Date;
  readonly version: string;
  readonly compaction: CompactionEvent | null;
  readonly window_change: ContextChangeEvent | null;
  readonly events_complete: boolean;
}

/**
 * Archived messages of a context with afterSeq < seq <= throughSeq, ascending, at most `limit`,
 * each with the version and events of its append (what the export, the tail and a stream replay
 * read back).
 */
export const readArchived = async (
  sql: Sql,
  contextId: string,
  afterSeq: number,
  throughSeq: number,
  limit: number,
): Promise<ArchivedAppend[]> => {
  if (throughSeq <= afterSeq || limit <= 0) return [];
  const rows = await sql<MessageRowOut[]>`
    SELECT seq, id, role, parts, metadata, token_count, inserted_at, version, compaction, window_change,
      events_complete
    FROM messages
    WHERE context_id = ${contextId} AND seq > ${afterSeq} AND seq <= ${throughSeq}
    ORDER BY seq LIMIT ${limit}`;
  return rows.map((row) => ({
    message: {
      id: row.id,
      seq: Number(row.seq),
      role: row.role,
      parts: row.parts,
      metadata: row.metadata,
      token_count: Number(row.token_count),
      inserted_at: row.inserted_at.toISOString(),
    },
    version: Number(row.version),
    ...(row.compaction === null ? {} : { compaction: row.compaction }),
    ...(row.window_change === null ? {} : { windowChange: row.window_change }),
    eventsComplete: row.events_complete,
  }));
};
