// The archive's migrations against a real PostgreSQL: they create the documented schema, record
// their version, and running them again (or from several callers at once) changes nothing;
// `fastpaca migrate` runs them alone, and neither it nor `config check` ever prints the password.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestSchemaVersion, runMigrations, schemaVersion } from '../../archiver/migrations.js';
import { openDatabase } from '../../archiver/database.js';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import { freePort } from '../e2e/process-harness.js';
import { startTestPostgres, type TestPostgres } from './postgres-harness.js';

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
});

describe('archive migrations', () => {
  it('creates messages (PK context_id, seq; a time index) and contexts, then is a no-op', async () => {
    const sql = openDatabase(pg.url);
    try {
      expect(await schemaVersion(sql)).toBe(0);
      const first = await runMigrations(sql);
      expect(first.applied).toEqual([1, 2]);
      expect(first.version).toBe(latestSchemaVersion);
      const again = await Promise.all([runMigrations(sql), runMigrations(sql)]);
      expect(again.map((report) => report.applied)).toEqual([[], []]);
      expect(await schemaVersion(sql)).toBe(latestSchemaVersion);

      const pk = await sql<{ column_name: string }[]>`
        SELECT a.attname AS column_name FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = 'messages'::regclass AND i.indisprimary ORDER BY a.attname`;
      expect(pk.map((row) => row.column_name)).toEqual(['context_id', 'seq']);
      const indexes = await sql<{ indexdef: string }[]>`
        SELECT indexdef FROM pg_indexes WHERE tablename = 'messages'`;
      expect(indexes.some((row) => row.indexdef.includes('(inserted_at)'))).toBe(true);
      const columns = await sql<{ column_name: string }[]>`
        SELECT column_name FROM information_schema.columns WHERE table_name = 'contexts'`;
      expect(columns.map((row) => row.column_name)).toEqual(
        expect.arrayContaining(['id', 'status', 'policy', 'version', 'last_seq', 'archived_seq']),
      );
      // Migration 2: each append's events for stream replay (window_change, events_complete).
      const messageColumns = await sql<{ column_name: string }[]>`
        SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'`;
      expect(messageColumns.map((row) => row.column_name)).toEqual(
        expect.arrayContaining(['version', 'compaction', 'window_change', 'events_complete']),
      );
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

const cli = async (args: readonly string[], env: Record<string, string>) => {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env,
    cwd: process.cwd(),
  };
  const code = await runCli(args, io, { serve: () => Promise.resolve(0) }, '0.0.0');
  return { code, stdout, stderr };
};

describe('fastpaca migrate', () => {
  it('migrates alone, is idempotent, and fails in one line without the password', async () => {
    const secret = 'migrate-secret-pw';
    const first = await cli(['migrate'], { DATABASE_URL: pg.url });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`archive schema at version ${latestSchemaVersion}`));
    const again = await cli(['migrate', '--database-url', pg.url], {});
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already up to date');

    const wrong = `postgres://fastpaca:${secret}@127.0.0.1:${await freePort()}/nope`;
    const failed = await cli(['migrate'], { DATABASE_URL: wrong });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^fastpaca: archive migration failed: .+\n$/);
    expect(failed.stderr + failed.stdout).not.toContain(secret);

    const check = await cli(['config', 'check'], { DATABASE_URL: wrong, FASTPACA_ARCHIVER_ENABLED: 'true' });
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('127.0.0.1');
    expect(check.stdout + check.stderr).not.toContain(secret);

    expect((await cli(['migrate'], {})).code).toBe(2);
  }, 30_000);
});
