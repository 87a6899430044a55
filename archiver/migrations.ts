// The archive's schema: versioned, forward-only migrations. Each runs once, in order, in one
// transaction with its version recorded in `fastpaca_schema_migrations`; running them again is a
// no-op, and nodes migrating at the same time take turns on an advisory lock. A migration is never
// edited once released: a change is a new migration with the next version.

import type { Sql, TransactionSql } from './database.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'messages and contexts',
    statements: [
      // Every field of a stored message, plus the version the append gave it and the compaction a
      // policy ran during that append (what a stream replay needs). (context_id, seq) is the
      // idempotency key of the archiver's at-least-once inserts.
      `CREATE TABLE IF NOT EXISTS messages (
        context_id text NOT NULL,
        seq bigint NOT NULL,
        id text NOT NULL,
        role text NOT NULL,
        parts jsonb NOT NULL,
        metadata jsonb NOT NULL,
        token_count bigint NOT NULL,
        inserted_at timestamptz NOT NULL,
        version bigint NOT NULL,
        compaction jsonb,
        archived_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (context_id, seq)
      )`,
      'CREATE INDEX IF NOT EXISTS messages_inserted_at_idx ON messages (inserted_at)',
      // One row per context, rewritten whenever the archiver writes for it: for analytics and BI.
      `CREATE TABLE IF NOT EXISTS contexts (
        id text PRIMARY KEY,
        status text NOT NULL,
        token_budget bigint NOT NULL,
        trigger_ratio double precision NOT NULL,
        policy jsonb NOT NULL,
        metadata jsonb NOT NULL,
        version bigint NOT NULL,
        last_seq bigint NOT NULL,
        archived_seq bigint NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        synced_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 2,
    name: 'window changes for stream replay',
    statements: [
      // The `context` (window) event an append reported, so a stream replaying archived history
      // sends every event of each version. Rows archived before this migration keep
      // events_complete = false (whether their append reported a window change is unknown): a
      // stream replay gives their versions a `gap` frame instead of a partial version. Both are
      // metadata-only changes (a constant default), instant on a large table.
      'ALTER TABLE messages ADD COLUMN IF NOT EXISTS window_change jsonb',
      'ALTER TABLE messages ADD COLUMN IF NOT EXISTS events_complete boolean NOT NULL DEFAULT false',
    ],
  },
];

/** The newest schema version this build knows. */
export const latestSchemaVersion = migrations.reduce((max, m) => Math.max(max, m.version), 0);

// Any fixed 64-bit number: every fastpaca node (and `fastpaca migrate`) takes this one lock.
const migrationLockKey = 7_358_208_431;

export interface MigrationReport {
  /** Versions applied by this call, in order; empty when the schema was up to date. */
  readonly applied: readonly number[];
  /** The schema version afterwards (may exceed latestSchemaVersion if a newer build migrated). */
  readonly version: number;
}

const ensureLedger = async (sql: Sql | TransactionSql): Promise<void> => {
  await sql`CREATE TABLE IF NOT EXISTS fastpaca_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;
};

/** Applies every migration the database lacks. Idempotent; safe to run from several nodes at once. */
export const runMigrations = async (sql: Sql): Promise<MigrationReport> =>
  sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${migrationLockKey})`;
    await ensureLedger(tx);
    const rows = await tx<{ version: number }[]>`SELECT version FROM fastpaca_schema_migrations`;
    const done = new Set(rows.map((row) => row.version));
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      for (const statement of migration.statements) await tx.unsafe(statement);
      await tx`INSERT INTO fastpaca_schema_migrations (version, name)
        VALUES (${migration.version}, ${migration.name})`;
      applied.push(migration.version);
    }
    const version = Math.max(0, ...done, ...applied);
    return { applied, version };
  });

/** The schema version a database is at (0: never migrated). */
export const schemaVersion = async (sql: Sql): Promise<number> => {
  const [ledger] = await sql<{ exists: boolean }[]>`
    SELECT to_regclass('fastpaca_schema_migrations') IS NOT NULL AS exists`;
  if (ledger?.exists !== true) return 0;
  const [row] = await sql<
    { version: number | null }[]
  >`SELECT max(version) AS version FROM fastpaca_schema_migrations`;
  return row?.version ?? 0;
};
