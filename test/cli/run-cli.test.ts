// The command line in-process: flags reach loadConfig as the table defines them, precedence holds
// through the CLI, help lists every option, and errors exit 2 with one line naming the culprit.
import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../src/cli/cli.js';
import type { LoadedConfig } from '../../src/config/load-config.js';
import { optionKeys, options } from '../../src/config/options.js';
import { renderSampleConfig } from '../../src/config/sample-config.js';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly served: LoadedConfig[];
}

const run = async (args: readonly string[], env: Record<string, string> = {}): Promise<Run> => {
  let stdout = '';
  let stderr = '';
  const served: LoadedConfig[] = [];
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env,
    cwd: '/srv/fastpaca',
  };
  const serve = async (loaded: LoadedConfig): Promise<number> => {
    served.push(loaded);
    return 0;
  };
  const code = await runCli(args, io, { serve }, '9.9.9');
  return { code, stdout, stderr, served };
};

const servedConfig = (result: Run) => {
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  const loaded = result.served[0];
  if (loaded === undefined) throw new Error('serve was not called');
  return loaded.config;
};

describe('fastpaca serve flags', () => {
  it('passes every kind of flag through to the configuration', async () => {
    const config = servedConfig(
      await run([
        'serve',
        '--port=4100',
        '--raft-port',
        '6100',
        '--data-dir',
        'data',
        '--node-name',
        'node-1',
        '--cluster-seed',
        'a:4001',
        '--cluster-seed',
        'b',
        '--api-key',
        'k1',
        '--api-key',
        'k2,k3',
        '--host',
        '127.0.0.1',
        '--raft-pre-vote',
        '--raft-check-quorum=false',
        '--log-level',
        'debug',
      ]),
    );
    expect(config).toMatchObject({
      port: 4100,
      raftPort: 6100,
      dataDir: '/srv/fastpaca/data',
      nodeName: 'node-1',
      clusterSeed: [
        { host: 'a', port: 4001 },
        { host: 'b', port: 4100 },
      ],
      apiKeys: ['k1', 'k2', 'k3'],
      host: '127.0.0.1',
      raftPreVote: true,
      raftCheckQuorum: false,
      logLevel: 'debug',
    });
  });

  it('reads a bare boolean flag as true and --no-<flag> as false', async () => {
    const env = { FASTPACA_RAFT_PRE_VOTE: 'false', FASTPACA_RAFT_CHECK_QUORUM: 'true' };
    const config = servedConfig(await run(['serve', '--raft-pre-vote', '--no-raft-check-quorum'], env));
    expect(config.raftPreVote).toBe(true);
    expect(config.raftCheckQuorum).toBe(false);
  });

  it('lets a flag win over the environment, and the environment over the default', async () => {
    const env = { PORT: '4200', FASTPACA_TAIL_KEEP: '7' };
    const config = servedConfig(await run(['serve', '--port', '4300'], env));
    expect(config.port).toBe(4300);
    expect(config.tailKeep).toBe(7);
    expect(config.streamMaxConnections).toBe(512);
  });

  it('exits 2 with one line naming an invalid option and its source, without serving', async () => {
    const fromEnv = await run(['serve'], { FASTPACA_RAFT_PORT: 'abc' });
    expect(fromEnv).toMatchObject({ code: 2, stdout: '', served: [] });
    expect(fromEnv.stderr).toBe(
      'fastpaca: invalid configuration: FASTPACA_RAFT_PORT=abc (env): must be an integer between 0 and 65535\n',
    );
    const fromFlag = await run(['serve', '--token-estimator', 'gpt-4o']);
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toContain(
      '--token-estimator=gpt-4o (flag): must be "chars4" or "tiktoken:<model>"',
    );
    const twice = await run(['serve', '--port', '1', '--port', '2']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('--port (flag): is given more than once');
  });

  it.each([
    [['serve', '--bogus', '1'], 'Unknown argument: bogus'],
    [['serve', '--raftPort', '1'], 'Unknown argument: raftPort'],
    [['serve', 'extra'], 'Unknown argument: extra'],
    [['serve', '--port'], 'Not enough arguments following: port'],
    [['srve'], 'Unknown argument: srve'],
    [[], 'Give a command: serve, config, cluster, snapshot, migrate, health or bench'],
    [['config'], 'Give a config command: sample or check'],
    [['config', 'sample', '--port', '1'], 'Unknown argument: port'],
  ])('refuses %j with exit code 2', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.served).toEqual([]);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toContain(`fastpaca: ${message}`);
  });
});

describe('fastpaca help and config commands', () => {
  it('documents every option on serve --help and config check --help', async () => {
    for (const args of [
      ['serve', '--help'],
      ['config', 'check', '--help'],
    ]) {
      const result = await run(args);
      expect(result).toMatchObject({ code: 0, stderr: '', served: [] });
      expect(result.stdout).toContain('--config');
      for (const key of optionKeys) {
        expect(result.stdout).toContain(`--${options[key].flag} `);
        expect(result.stdout).toContain(options[key].env);
      }
    }
  });

  it('has --help on every command and a version', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/fastpaca serve\s/);
    expect(top.stdout).toMatch(/fastpaca config\s/);
    expect(top.stdout).toContain('Exit codes');
    const config = await run(['config', '-h']);
    expect(config.stdout).toContain('fastpaca config sample');
    expect(config.stdout).toContain('fastpaca config check');
    expect((await run(['config', 'sample', '--help'])).code).toBe(0);
    expect(await run(['--version'])).toMatchObject({ code: 0, stdout: '9.9.9\n' });
  });

  it('prints the sample config', async () => {
    expect(await run(['config', 'sample'])).toMatchObject({
      code: 0,
      stdout: renderSampleConfig(),
      stderr: '',
    });
  });

  it('prints the resolved config with origins, secrets redacted', async () => {
    const result = await run(['config', 'check', '--api-key', 'super-secret-key', '--port', '4300'], {
      PORT: '4200',
      DATABASE_URL: 'postgres://fastpaca:hunter2@db.internal:5432/fastpaca',
      FASTPACA_TYPO: '1',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('super-secret-key');
    expect(result.stdout).not.toContain('hunter2');
    const document = JSON.parse(result.stdout) as {
      config: Record<string, unknown>;
      origins: Record<string, string>;
    };
    expect(document.config).toMatchObject({
      port: 4300,
      raftPort: 5300,
      apiKeys: ['<redacted>'],
      databaseUrl: 'postgres://fastpaca:<redacted>@db.internal:5432/fastpaca',
      clusterSeed: '',
    });
    expect(document.origins).toMatchObject({
      port: 'flag --port',
      raftPort: 'default (port + 1000)',
      databaseUrl: 'env DATABASE_URL',
      tailKeep: 'default',
    });
    expect(result.stderr).toContain('warning: FASTPACA_TYPO is set but is not a fastpaca option');
    expect((await run(['config', 'show'])).code).toBe(0);
  });

  it('exits 2 when config check finds an invalid option', async () => {
    const result = await run(['config', 'check'], { FASTPACA_CACHE_BYTES_MAX: '10' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('FASTPACA_CACHE_BYTES_MAX=10 (env): must be an integer between');
  });
});
