// The archive's Postgres connection (the `postgres` package) and the one way its failures are
// described: whatever a driver error says, the URL's password never appears in a log line, an error
// message or a readiness reason.

import postgres from 'postgres';

import { redacted } from '../src/config/redact-config.js';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;

export interface DatabaseOptions {
  /** Connections in the pool (default 4: the archiver writes one batch at a time). */
  readonly max?: number;
  /** Seconds to wait for a connection before the attempt fails (default 5). */
  readonly connectTimeoutSeconds?: number;
}

/** A pool for `url`. Connects lazily: the first query opens a connection (or fails). */
export const openDatabase = (url: string, options: DatabaseOptions = {}): Sql =>
  postgres(url, {
    max: options.max ?? 4,
    connect_timeout: options.connectTimeoutSeconds ?? 5,
    idle_timeout: 60,
    onnotice: () => {},
    connection: { application_name: 'fastpaca' },
  });

/** The secrets a URL carries (its password, plain and percent-decoded, and password parameters). */
const secretsOf = (url: string): string[] => {
  try {
    const parsed = new URL(url);
    const secrets = [parsed.password, safeDecode(parsed.password)];
    for (const name of ['password', 'sslpassword']) secrets.push(parsed.searchParams.get(name) ?? '');
    return secrets.filter((secret) => secret.length > 0);
  } catch {
    return [url];
  }
};

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** One line describing a database failure, with every secret of `url` replaced. */
export const describeDatabaseError = (error: unknown, url: string): string => {
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  let text = error instanceof Error ? error.message : String(error);
  if (error instanceof AggregateError && error.errors.length > 0) {
    // Node's connection errors to several addresses arrive as one AggregateError without a message.
    text = error.errors
      .map((inner: unknown) => (inner instanceof Error ? inner.message : String(inner)))
      .join('; ');
  }
  for (const secret of secretsOf(url)) text = text.replaceAll(secret, redacted);
  return code === undefined || text.includes(code) ? text : `${code}: ${text}`;
};
