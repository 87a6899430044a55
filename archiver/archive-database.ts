// The archive database as a node sees it: a pool that is prepared once (migrated, or its schema
// checked when MIGRATE_ON_BOOT is off) and then either up or down. Nothing here ever throws at
// the node: a wrong URL or an unreachable server at start-up is one log line and a readiness reason
// until it is fixed; an outage later is one line when it starts and one when it ends. A failed
// pool is replaced, so a connection hung on a dead network never holds the next attempt.

import type { Logger } from '../src/telemetry/logger.js';
import { describeDatabaseError, openDatabase, type Sql } from './database.js';
import { latestSchemaVersion, runMigrations, schemaVersion } from './migrations.js';

export interface ArchiveDatabaseOptions {
  readonly url: string;
  readonly migrateOnBoot: boolean;
  readonly log: Logger;
  readonly connectTimeoutSeconds?: number;
}

export class ArchiveDatabase {
  private pool: Sql;
  private prepared = false;
  /** Why the database is not usable, while it is not; undefined while it is. */
  private problem: string | undefined = 'archive database not checked yet';
  private down = false;

  constructor(private readonly options: ArchiveDatabaseOptions) {
    this.pool = this.open();
  }

  /** The pool to use now (replaced after a failure). */
  sql(): Sql {
    return this.pool;
  }

  /** True once the schema is known good; until then the node is not ready. */
  isPrepared(): boolean {
    return this.prepared;
  }

  /** The readiness reason while the database was never usable since start-up. */
  readinessProblem(): string | undefined {
    return this.prepared ? undefined : this.problem;
  }

  /** Migrates (or checks the schema); true once done. Logs only when the outcome changes. */
  async prepare(): Promise<boolean> {
    if (this.prepared) return true;
    try {
      if (this.options.migrateOnBoot) {
        const { applied, version } = await runMigrations(this.pool);
        this.options.log.info(
          { type: 'archive_database', schemaVersion: version, applied },
          'archive database ready',
        );
      } else {
        const version = await schemaVersion(this.pool);
        if (version < latestSchemaVersion) {
          this.report(
            `archive schema is at version ${version}, this node needs ${latestSchemaVersion}: run fastpaca migrate (or set MIGRATE_ON_BOOT=true)`,
          );
          return false;
        }
        this.options.log.info({ type: 'archive_database', schemaVersion: version }, 'archive database ready');
      }
      this.prepared = true;
      this.problem = undefined;
      this.down = false;
      return true;
    } catch (error) {
      this.report(`archive database unavailable: ${this.describe(error)}`);
      await this.replacePool();
      return false;
    }
  }

  /** A write or read failed: the database is down until the next success. */
  async failed(error: unknown): Promise<void> {
    const reason = this.describe(error);
    if (!this.down) {
      this.down = true;
      this.options.log.warn(
        { type: 'archive_database', reason },
        'archive database unavailable; archiving paused, appends unaffected (retrying with backoff)',
      );
    }
    await this.replacePool();
  }

  /** A write succeeded. */
  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.options.log.info(
      { type: 'archive_database' },
      'archive database available again; archiving resumed',
    );
  }

  describe(error: unknown): string {
    return describeDatabaseError(error, this.options.url);
  }

  async close(): Promise<void> {
    await this.pool.end({ timeout: 1 });
  }

  private report(problem: string): void {
    if (problem !== this.problem)
      this.options.log.error({ type: 'archive_database', reason: problem }, problem);
    this.problem = problem;
  }

  private open(): Sql {
    return openDatabase(this.options.url, {
      ...(this.options.connectTimeoutSeconds === undefined
        ? {}
        : { connectTimeoutSeconds: this.options.connectTimeoutSeconds }),
    });
  }

  private async replacePool(): Promise<void> {
    const old = this.pool;
    this.pool = this.open();
    // Queries still running on the old pool (a hung network) are abandoned, not awaited.
    await old.end({ timeout: 0 }).catch(() => {});
  }
}
