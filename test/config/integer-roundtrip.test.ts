// Property: every integer option accepts every value in its range from the environment, a flag and
// the TOML file, and reads back exactly that value; its bounds are inclusive and one past them fails.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadConfig, type ConfigInputs } from '../../src/config/load-config.js';
import { optionKeys, options, type OptionKey, type OptionSpec } from '../../src/config/options.js';
import { configErrorOf, useTempDirs, writeToml } from './helpers.js';

interface IntegerOption {
  readonly key: OptionKey;
  readonly min: number;
  readonly max: number;
}

const integerOptions: IntegerOption[] = optionKeys.flatMap((key) => {
  const option: OptionSpec = options[key];
  const min: unknown = option.kind.schema['minimum'];
  const max: unknown = option.kind.schema['maximum'];
  if (option.kind.schema.type !== 'integer' || typeof min !== 'number' || typeof max !== 'number') return [];
  return [{ key, min, max }];
});

/** Other options set so cross-option rules hold whatever value `key` takes. */
const companions = (key: OptionKey, value: number): Record<string, string> => {
  switch (key) {
    case 'port':
      return { FASTPACA_RAFT_PORT: value === 7 ? '8' : '7' };
    case 'raftPort':
      return { PORT: value === 4000 ? '4001' : '4000' };
    case 'raftHeartbeatTicks':
      return { FASTPACA_RAFT_ELECTION_TICKS: '1000' };
    case 'raftElectionTicks':
      return { FASTPACA_RAFT_HEARTBEAT_TICKS: '1' };
    case 'raftInflightBytesMax':
      return { FASTPACA_RAFT_LOG_RETAIN_BYTES: String(4096 * 1024 * 1024) };
    case 'raftLogRetainBytes':
      return { FASTPACA_RAFT_INFLIGHT_BYTES_MAX: '1024' };
    case 'httpBufferedBytesMax':
      return { FASTPACA_BODY_LIMIT_BYTES: '1024' };
    default:
      return {};
  }
};

type Via = 'env' | 'flag' | 'file';

describe('integer options round-trip through every source', () => {
  const tempDir = useTempDirs();

  const inputsFor = (key: OptionKey, value: number, via: Via, dir: string): ConfigInputs => {
    const option: OptionSpec = options[key];
    const env = companions(key, value);
    if (via === 'env') return { env: { ...env, [option.env]: String(value) } };
    if (via === 'flag') return { env, flags: { [option.flag]: String(value) } };
    return { env, flags: { config: writeToml(dir, { [option.toml]: value }) } };
  };

  it('has integer options to test', () => {
    expect(integerOptions.length).toBeGreaterThan(20);
  });

  it('reads back any in-range value', () => {
    const dir = tempDir();
    const arbitrary = fc
      .constantFrom(...integerOptions)
      .chain(({ key, min, max }) =>
        fc.tuple(fc.constant(key), fc.integer({ min, max }), fc.constantFrom<Via>('env', 'flag', 'file')),
      );
    fc.assert(
      fc.property(arbitrary, ([key, value, via]) => {
        const loaded = loadConfig(inputsFor(key, value, via, dir));
        expect(loaded.config[key]).toBe(value);
        expect(loaded.sources.get(key)?.kind).toBe(via);
      }),
      { numRuns: 600 },
    );
  });

  it.each(integerOptions)('$key: bounds $min..$max are inclusive', ({ key, min, max }) => {
    const dir = tempDir();
    for (const via of ['env', 'flag', 'file'] as const) {
      for (const value of [min, max]) {
        expect(loadConfig(inputsFor(key, value, via, dir)).config[key]).toBe(value);
      }
      for (const value of [min - 1, max + 1]) {
        const error = configErrorOf(() => loadConfig(inputsFor(key, value, via, dir)));
        expect(error.option).toBe(key);
        expect(error.message).toContain(`must be an integer between ${min} and ${max}`);
      }
    }
  });

  it('accepts a sign and surrounding blanks in text, as the environment often has them', () => {
    expect(loadConfig({ env: { PORT: ' +4100 ' } }).config.port).toBe(4100);
    expect(loadConfig({ env: { FASTPACA_TAIL_KEEP: '0010' } }).config.tailKeep).toBe(10);
  });
});
