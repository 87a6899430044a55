// The process logger: pino, one JSON object per line on stdout, level from config. Secrets (API
// keys, the cluster secret, Authorization and Cookie headers, passwords) are redacted by path so a
// careless `logger.info({ config })` or `logger.info({ headers })` cannot leak them; the database
// URL keeps its host but loses its password. Message parts are redacted too: contents never go to logs.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { redacted, redactUrlPassword } from '../config/redact-config.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Defaults to stdout; tests pass a stream to read the lines back. */
  readonly destination?: DestinationStream;
  /** Fields on every line, e.g. { node: nodeName }. */
  readonly base?: Readonly<Record<string, string | number>>;
}

const secretKeys = [
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'apiKey',
  'apiKeys',
  'api_key',
  'api_keys',
  'clusterSecret',
  'cluster_secret',
  'secret',
  'password',
  'token',
  'databaseUrl',
  'database_url',
  'parts',
];

/** Each secret key at the top level and up to three objects deep (fast-redact paths, no deep globs). */
export const redactPaths: readonly string[] = secretKeys.flatMap((key) => [
  key,
  `*.${key}`,
  `*.*.${key}`,
  `*.*.*.${key}`,
]);

const censor = (value: unknown, path: readonly string[]): unknown => {
  const key = path[path.length - 1];
  if ((key === 'databaseUrl' || key === 'database_url') && typeof value === 'string')
    return redactUrlPassword(value);
  return redacted;
};

export const createLogger = (options: LoggerOptions): Logger => {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...redactPaths], censor },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    destination,
  );
};
