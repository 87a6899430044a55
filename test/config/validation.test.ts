// Every option refuses invalid values from every source with a ConfigError that names the option
// as the operator wrote it (flag, variable or TOML key) and its source, never echoing a secret.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { optionKeys, options, type OptionKey, type OptionSpec } from '../../src/config/options.js';
import { configErrorOf, useTempDirs, writeToml } from './helpers.js';

const numberProperty = (option: OptionSpec, name: 'minimum' | 'maximum' | 'maxLength'): number => {
  const value: unknown = option.kind.schema[name];
  if (typeof value !== 'number') throw new Error(`${option.env} has no ${name}`);
  return value;
};

/** Invalid spellings of a value, chosen by the option's kind (as text, the way env and flags send it). */
const invalidValues = (option: OptionSpec): string[] => {
  const schema = option.kind.schema;
  switch (schema.type) {
    case 'integer': {
      const min = numberProperty(option, 'minimum');
      const max = numberProperty(option, 'maximum');
      return ['abc', '1.5', '12abc', '0x10', `${min - 1}`, `${max + 1}`];
    }
    case 'boolean':
      return ['maybe', '2', 'truthy'];
    case 'array':
      return option.env === 'FASTPACA_CLUSTER_SEED'
        ? ['bad_host!:4000', 'node-1:99999', 'node-1:port', '[::1']
        : ['has space', 'ok,has space'];
    case 'string':
      if (Array.isArray(schema['enum'])) return ['loud'];
      return ['x'.repeat(numberProperty(option, 'maxLength') + 1), ...textExtras(option)];
    default:
      throw new Error(`no invalid values for ${option.env}`);
  }
};

const textExtras = (option: OptionSpec): string[] => {
  switch (option.env) {
    case 'FASTPACA_HOST':
      return ['local host'];
    case 'FASTPACA_NODE_NAME':
      return ['-leading-dash', 'has space', 'slash/name'];
    case 'DATABASE_URL':
      return ['mysql://user:hunter2@db/fastpaca', 'not a url'];
    case 'FASTPACA_CLUSTER_SECRET':
      return ['short-secret'];
    case 'FASTPACA_TOKEN_ESTIMATOR':
      return ['gpt-4o', 'tiktoken:not-a-model', 'chars5'];
    default:
      return [];
  }
};

const cases = optionKeys.flatMap((key) => invalidValues(options[key]).map((value) => ({ key, value })));

const expectNamed = (key: OptionKey, value: string, run: () => unknown, name: string, source: string) => {
  const error = configErrorOf(run);
  expect(error.option).toBe(key);
  expect(error.source).toBe(source);
  expect(error.message).toContain(name);
  expect(error.message).toContain(`(${source}`);
  const option: OptionSpec = options[key];
  if (option.secret === true) {
    expect(error.message).not.toContain(value);
    expect(error.message).toContain('<redacted>');
  }
};

describe('invalid option values are refused, naming the option and its source', () => {
  const tempDir = useTempDirs();

  it('covers every option of the table', () => {
    expect(new Set(cases.map(({ key }) => key))).toEqual(new Set(optionKeys));
  });

  it.each(cases)('$key = $value', ({ key, value }) => {
    const option: OptionSpec = options[key];
    expectNamed(key, value, () => loadConfig({ env: { [option.env]: value } }), option.env, 'env');
    expectNamed(
      key,
      value,
      () => loadConfig({ flags: { [option.flag]: value } }),
      `--${option.flag}`,
      'flag',
    );
    const file = writeToml(tempDir(), { [option.toml]: value });
    expectNamed(key, value, () => loadConfig({ flags: { config: file } }), option.toml, 'file');
  });

  it('prints one line in the documented form', () => {
    const error = configErrorOf(() => loadConfig({ env: { FASTPACA_RAFT_PORT: 'abc' } }));
    expect(error.message).toBe('FASTPACA_RAFT_PORT=abc (env): must be an integer between 0 and 65535');
    expect(error.message).not.toContain('\n');
  });

  it('refuses TOML values of the wrong type', () => {
    const dir = tempDir();
    const wrong: [string, unknown][] = [
      ['port', 4000.5],
      ['port', true],
      ['raft.pre_vote', 1],
      ['api_keys', 'not,an,array,but,fine'],
      ['api_keys', [1, 2]],
      ['cluster.seed', [4000]],
      ['log_level', ['info']],
    ];
    const refused = wrong.filter(([key, value]) => {
      const file = writeToml(dir, { [key]: value }, `${key}.toml`);
      try {
        loadConfig({ flags: { config: file } });
        return false;
      } catch (error) {
        expect(String(error)).toContain(key);
        return true;
      }
    });
    // A comma-separated string is the env spelling of a list and is accepted in the file too.
    expect(refused.map(([key, value]) => `${key}=${JSON.stringify(value)}`)).toEqual([
      'port=4000.5',
      'port=true',
      'raft.pre_vote=1',
      'api_keys=[1,2]',
      'cluster.seed=[4000]',
      'log_level=["info"]',
    ]);
  });

  it('refuses unknown TOML keys, naming the key and the file', () => {
    const dir = tempDir();
    for (const key of ['prot', 'raft.tick', 'archiver.enabled_', 'tokens.estimator.model']) {
      const file = writeToml(dir, { [key]: 1 }, 'unknown.toml');
      const error = configErrorOf(() => loadConfig({ flags: { config: file } }));
      expect(error.message).toBe(`${key} (file ${file}): is not a fastpaca option (see config.sample.toml)`);
      expect(error.source).toBe('file');
    }
  });

  it('refuses a file that is not TOML or cannot be read', () => {
    const dir = tempDir();
    const broken = join(dir, 'broken.toml');
    writeFileSync(broken, 'port = 4000\nhost = "unterminated\n');
    const syntax = configErrorOf(() => loadConfig({ flags: { config: broken } }));
    expect(syntax.message).toMatch(/^config file .*broken\.toml: invalid TOML at line 2, column \d+: /);
    const missing = join(dir, 'missing.toml');
    const unreadable = configErrorOf(() => loadConfig({ env: { FASTPACA_CONFIG: missing } }));
    expect(unreadable.message).toContain(`config file ${missing}: cannot be read`);
  });

  it('refuses a non-list option given twice on the command line', () => {
    const error = configErrorOf(() => loadConfig({ flags: { port: ['4000', '4001'] } }));
    expect(error.message).toBe('--port (flag): is given more than once');
    expect(error.option).toBe('port');
  });

  it('checks rules between options, naming both', () => {
    const archiver = configErrorOf(() => loadConfig({ env: { FASTPACA_ARCHIVER_ENABLED: 'true' } }));
    expect(archiver.option).toBe('archiverEnabled');
    expect(archiver.message).toContain('FASTPACA_ARCHIVER_ENABLED=true (env)');
    expect(archiver.message).toContain('DATABASE_URL');

    const ticks = configErrorOf(() =>
      loadConfig({ flags: { 'raft-heartbeat-ticks': '10' }, env: { FASTPACA_RAFT_ELECTION_TICKS: '10' } }),
    );
    expect(ticks.option).toBe('raftHeartbeatTicks');
    expect(ticks.message).toContain('--raft-heartbeat-ticks=10 (flag)');
    expect(ticks.message).toContain('FASTPACA_RAFT_ELECTION_TICKS=10 (env)');

    const retain = configErrorOf(() =>
      loadConfig({
        env: { FASTPACA_RAFT_LOG_RETAIN_BYTES: '1048576', FASTPACA_RAFT_INFLIGHT_BYTES_MAX: '2097152' },
      }),
    );
    expect(retain.option).toBe('raftLogRetainBytes');
    expect(retain.message).toContain('FASTPACA_RAFT_LOG_RETAIN_BYTES=1048576 (env)');
    expect(retain.message).toContain('FASTPACA_RAFT_INFLIGHT_BYTES_MAX=2097152 (env)');

    const buffered = configErrorOf(() =>
      loadConfig({
        env: { FASTPACA_HTTP_BUFFERED_BYTES_MAX: '1048576', FASTPACA_BODY_LIMIT_BYTES: '2097152' },
      }),
    );
    expect(buffered.option).toBe('httpBufferedBytesMax');
    expect(buffered.message).toContain('must be at least the body limit');

    const ports = configErrorOf(() => loadConfig({ env: { PORT: '4000', FASTPACA_RAFT_PORT: '4000' } }));
    expect(ports.option).toBe('raftPort');
    expect(ports.message).toContain('must differ from the HTTP port');

    // A derived default that falls out of range is reported as such.
    const derived = configErrorOf(() => loadConfig({ env: { PORT: '65000' } }));
    expect(derived.option).toBe('raftPort');
    expect(derived.message).toContain('(default: port + 1000)');
  });
});
