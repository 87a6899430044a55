// `fastpaca migrate`: runs the archive's migrations alone (for deployments that migrate before
// rolling nodes out, with MIGRATE_ON_BOOT=false) and says what it did in one line. A failure is one
// line too, without the URL's password.

import { describeDatabaseError, openDatabase } from './database.js';
import { latestSchemaVersion, runMigrations } from './migrations.js';

export interface MigrateOutcome {
  readonly ok: boolean;
  /** One line for the operator. */
  readonly line: string;
}

export const migrateDatabase = async (databaseUrl: string): Promise<MigrateOutcome> => {
  const sql = openDatabase(databaseUrl, { max: 1 });
  try {
    const { applied, version } = await runMigrations(sql);
    const what = applied.length === 0 ? 'already up to date' : `applied ${applied.join(', ')}`;
    const newer = version > latestSchemaVersion ? ` (newer than this build's ${latestSchemaVersion})` : '';
    return { ok: true, line: `archive schema at version ${version}${newer}: ${what}` };
  } catch (error) {
    return { ok: false, line: `archive migration failed: ${describeDatabaseError(error, databaseUrl)}` };
  } finally {
    await sql.end({ timeout: 1 });
  }
};
