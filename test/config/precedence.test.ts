// Precedence flag > env > file > default for the options the contract (API.md) names by their
// environment variables, plus derived defaults, the config file's own selection and empty variables.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { options, type OptionKey } from '../../src/config/options.js';
import { useTempDirs, writeToml } from './helpers.js';

interface Row {
  readonly key: OptionKey;
  /** The variable name API.md documents. */
  readonly env: string;
  readonly file: unknown;
  readonly envValue: string;
  readonly flagValue: string;
  /** Expected resolved values with file only, file + env, file + env + flag. */
  readonly expected: readonly [unknown, unknown, unknown];
  /** Environment every layer needs (e.g. a database URL for the archiver). */
  readonly base?: Readonly<Record<string, string>>;
}

const cwd = '/srv/fastpaca';
const seed = (host: string, port: number) => ({ host, port });

const rows: readonly Row[] = [
  { key: 'port', env: 'PORT', file: 4100, envValue: '4200', flagValue: '4300', expected: [4100, 4200, 4300] },
  {
    key: 'raftPort',
    env: 'FASTPACA_RAFT_PORT',
    file: 6100,
    envValue: '6200',
    flagValue: '6300',
    expected: [6100, 6200, 6300],
  },
  {
    key: 'nodeName',
    env: 'FASTPACA_NODE_NAME',
    file: 'file-node',
    envValue: 'env-node',
    flagValue: 'flag-node',
    expected: ['file-node', 'env-node', 'flag-node'],
  },
  {
    key: 'clusterSeed',
    env: 'FASTPACA_CLUSTER_SEED',
    file: ['f1.internal:4001'],
    envValue: 'e1.internal:4002, e2.internal',
    flagValue: '10.0.0.3:4003',
    expected: [
      [seed('f1.internal', 4001)],
      [seed('e1.internal', 4002), seed('e2.internal', 4000)],
      [seed('10.0.0.3', 4003)],
    ],
  },
  {
    key: 'dataDir',
    env: 'FASTPACA_RAFT_DATA_DIR',
    file: 'file-dir',
    envValue: '/var/lib/env-dir',
    flagValue: 'flag-dir',
    expected: [resolve(cwd, 'file-dir'), '/var/lib/env-dir', resolve(cwd, 'flag-dir')],
  },
  {
    key: 'tokenEstimator',
    env: 'FASTPACA_TOKEN_ESTIMATOR',
    file: 'chars4',
    envValue: 'tiktoken:gpt-4',
    flagValue: 'tiktoken:gpt-3.5-turbo',
    expected: ['chars4', 'tiktoken:gpt-4', 'tiktoken:gpt-3.5-turbo'],
  },
  {
    key: 'streamMaxConnections',
    env: 'FASTPACA_STREAM_MAX_CONNECTIONS',
    file: 10,
    envValue: '20',
    flagValue: '30',
    expected: [10, 20, 30],
  },
  {
    key: 'apiKeys',
    env: 'FASTPACA_API_KEY',
    file: ['file-key-1', 'file-key-2'],
    envValue: 'env-key-1,env-key-2',
    flagValue: 'flag-key',
    expected: [['file-key-1', 'file-key-2'], ['env-key-1', 'env-key-2'], ['flag-key']],
  },
  {
    key: 'archiverEnabled',
    env: 'FASTPACA_ARCHIVER_ENABLED',
    file: true,
    envValue: 'no',
    flagValue: 'yes',
    expected: [true, false, true],
    base: { DATABASE_URL: 'postgres://fastpaca@db.internal/fastpaca' },
  },
  {
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    file: 'postgres://file@db/fastpaca',
    envValue: 'postgres://env@db/fastpaca',
    flagValue: 'postgresql://flag@db/fastpaca',
    expected: ['postgres://file@db/fastpaca', 'postgres://env@db/fastpaca', 'postgresql://flag@db/fastpaca'],
  },
  {
    key: 'archiveFlushIntervalMs',
    env: 'FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS',
    file: 100,
    envValue: '200',
    flagValue: '300',
    expected: [100, 200, 300],
  },
  {
    key: 'archiverBatchSize',
    env: 'FASTPACA_ARCHIVER_BATCH_SIZE',
    file: 10,
    envValue: '20',
    flagValue: '30',
    expected: [10, 20, 30],
  },
  {
    key: 'migrateOnBoot',
    env: 'MIGRATE_ON_BOOT',
    file: true,
    envValue: 'false',
    flagValue: '1',
    expected: [true, false, true],
  },
  { key: 'tailKeep', env: 'FASTPACA_TAIL_KEEP', file: 5, envValue: '6', flagValue: '7', expected: [5, 6, 7] },
  {
    key: 'logLevel',
    env: 'FASTPACA_LOG_LEVEL',
    file: 'debug',
    envValue: 'WARN',
    flagValue: 'error',
    expected: ['debug', 'warn', 'error'],
  },
];

describe('precedence: flag > env > file > default', () => {
  const tempDir = useTempDirs();

  it.each(rows)('$env / --$key', (row) => {
    const option = options[row.key];
    expect(option.env).toBe(row.env);
    const file = writeToml(tempDir(), { [option.toml]: row.file });
    const base = row.base ?? {};
    const layers = [
      { flags: { config: file }, env: base },
      { flags: { config: file }, env: { ...base, [row.env]: row.envValue } },
      { flags: { config: file, [option.flag]: row.flagValue }, env: { ...base, [row.env]: row.envValue } },
    ];
    const kinds = ['file', 'env', 'flag'] as const;
    layers.forEach((inputs, index) => {
      const loaded = loadConfig({ ...inputs, cwd });
      expect(loaded.config[row.key], `${kinds[index]} layer`).toEqual(row.expected[index]);
      expect(loaded.sources.get(row.key)?.kind).toBe(kinds[index]);
    });
  });

  it('uses the documented defaults when nothing is set', () => {
    const { config, sources } = loadConfig({ env: {}, cwd });
    expect(config).toMatchObject({
      port: 4000,
      raftPort: 5000,
      host: '0.0.0.0',
      dataDir: resolve(cwd, 'priv/raft'),
      tokenEstimator: 'tiktoken:gpt-4o',
      streamMaxConnections: 512,
      apiKeys: [],
      clusterSeed: [],
      expectedClusterSize: 1,
      archiverEnabled: false,
      archiveFlushIntervalMs: 5000,
      archiverBatchSize: 5000,
      migrateOnBoot: false,
      tailKeep: 1000,
      raftLogRetainEntries: 1000,
    });
    expect(config.nodeName).toBeUndefined();
    expect(config.databaseUrl).toBeUndefined();
    expect('nodeName' in config).toBe(false);
    expect(sources.get('port')?.kind).toBe('default');
    expect(sources.has('nodeName')).toBe(false);
  });

  it('derives raft port, cluster size and migrations from the options they follow', () => {
    expect(loadConfig({ env: { PORT: '4100' } }).config.raftPort).toBe(5100);
    expect(loadConfig({ env: { PORT: '0' } }).config.raftPort).toBe(0);
    expect(loadConfig({ env: { PORT: '4100', FASTPACA_RAFT_PORT: '7000' } }).config.raftPort).toBe(7000);
    expect(loadConfig({ env: { FASTPACA_CLUSTER_SEED: 'a:4000' } }).config.expectedClusterSize).toBe(3);
    expect(
      loadConfig({ env: { FASTPACA_CLUSTER_SEED: 'a:4000', FASTPACA_EXPECTED_CLUSTER_SIZE: '5' } }).config
        .expectedClusterSize,
    ).toBe(5);
    const archiving = { FASTPACA_ARCHIVER_ENABLED: 'true', DATABASE_URL: 'postgres://u@h/d' };
    expect(loadConfig({ env: archiving }).config.migrateOnBoot).toBe(true);
    expect(loadConfig({ env: { ...archiving, MIGRATE_ON_BOOT: 'false' } }).config.migrateOnBoot).toBe(false);
    const derived = loadConfig({ env: {} }).sources.get('raftPort');
    expect(derived).toMatchObject({ kind: 'default', detail: 'port + 1000' });
  });

  it('reads the file named by FASTPACA_CONFIG, and --config wins over it', () => {
    const dir = tempDir();
    const fromEnv = writeToml(dir, { port: 4100 }, 'env.toml');
    const fromFlag = writeToml(dir, { port: 4200 }, 'flag.toml');
    expect(loadConfig({ env: { FASTPACA_CONFIG: fromEnv } }).config.port).toBe(4100);
    const both = loadConfig({ flags: { config: fromFlag }, env: { FASTPACA_CONFIG: fromEnv } });
    expect(both.config.port).toBe(4200);
    expect(both.sources.get('port')).toMatchObject({ kind: 'file', name: 'port', detail: fromFlag });
  });

  it('treats an empty environment variable as unset', () => {
    const file = writeToml(tempDir(), { port: 4100, 'tokens.estimator': 'chars4' });
    const { config } = loadConfig({
      flags: { config: file },
      env: { PORT: '', FASTPACA_TOKEN_ESTIMATOR: '   ', FASTPACA_TAIL_KEEP: '' },
    });
    expect(config.port).toBe(4100);
    expect(config.tokenEstimator).toBe('chars4');
    expect(config.tailKeep).toBe(1000);
  });

  it('resolves a relative data directory against the working directory, not the file', () => {
    const dir = tempDir();
    const file = writeToml(dir, { data_dir: 'data' });
    expect(loadConfig({ flags: { config: file }, cwd }).config.dataDir).toBe(resolve(cwd, 'data'));
  });

  it('joins a repeated list flag and warns about unknown FASTPACA_ variables', () => {
    const loaded = loadConfig({
      flags: { 'api-key': ['one', 'two,three'] },
      env: { FASTPACA_PROT: '1', FASTPACA_CONFIG: '', HOME: '/root' },
    });
    expect(loaded.config.apiKeys).toEqual(['one', 'two', 'three']);
    expect(loaded.warnings).toEqual([expect.stringContaining('FASTPACA_PROT')]);
  });
});
