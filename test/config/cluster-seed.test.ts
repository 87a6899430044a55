// FASTPACA_CLUSTER_SEED parsing: host, host:port, bracketed IPv6, the node's own port as default,
// the same list from env, flag and TOML, and a round trip through the documented text form.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSeed, parseSeedEntry } from '../../src/config/cluster-seed.js';
import { loadConfig } from '../../src/config/load-config.js';
import { configErrorOf, useTempDirs, writeToml } from './helpers.js';

describe('cluster seed entries', () => {
  it.each([
    ['node-1.internal:4001', { host: 'node-1.internal', port: 4001 }],
    ['node-1.internal', { host: 'node-1.internal', port: 4000 }],
    ['10.0.0.7:65535', { host: '10.0.0.7', port: 65535 }],
    ['  fastpaca.svc.cluster.local  ', { host: 'fastpaca.svc.cluster.local', port: 4000 }],
    ['[::1]:4100', { host: '::1', port: 4100 }],
    ['[fe80::1]', { host: 'fe80::1', port: 4000 }],
    ['localhost', { host: 'localhost', port: 4000 }],
  ])('%s', (entry, expected) => {
    expect(parseSeedEntry(entry, 4000)).toEqual(expected);
  });

  it.each([
    '',
    ':4000',
    'node-1:',
    'node-1:0',
    'node-1:65536',
    'node-1:40a0',
    'node_1:4000',
    '-node:4000',
    'node-.internal',
    'a..b',
    '::1',
    '[::1',
    '[::1]x',
    '[::1]:',
    '[zz::1]:4000',
    'http://node-1:4000',
    `${'a'.repeat(64)}.internal`,
  ])('refuses %j', (entry) => {
    expect(parseSeedEntry(entry, 4000)).toBeUndefined();
  });

  it('round-trips any valid seed through its text form', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const host = fc.oneof(
      fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.')),
      fc.ipV4(),
      fc.constantFrom('::1', 'fe80::1', '2001:db8::7'),
    );
    const peer = fc.record({ host, port: fc.integer({ min: 1, max: 65535 }) });
    fc.assert(
      fc.property(fc.array(peer, { maxLength: 8 }), (peers) => {
        const { config } = loadConfig({ env: { FASTPACA_CLUSTER_SEED: formatSeed(peers) } });
        expect(config.clusterSeed).toEqual(peers);
      }),
      { numRuns: 200 },
    );
  });
});

describe('cluster seed option', () => {
  const tempDir = useTempDirs();

  it('gives entries without a port the node’s own HTTP port', () => {
    const { config } = loadConfig({ env: { PORT: '4100', FASTPACA_CLUSTER_SEED: 'a,b:4200, c ,,' } });
    expect(config.clusterSeed).toEqual([
      { host: 'a', port: 4100 },
      { host: 'b', port: 4200 },
      { host: 'c', port: 4100 },
    ]);
  });

  it('reads the same list from a TOML array and from repeated flags', () => {
    const file = writeToml(tempDir(), { 'cluster.seed': ['a:4001', 'b'] });
    const expected = [
      { host: 'a', port: 4001 },
      { host: 'b', port: 4000 },
    ];
    expect(loadConfig({ flags: { config: file } }).config.clusterSeed).toEqual(expected);
    expect(loadConfig({ flags: { 'cluster-seed': ['a:4001', 'b'] } }).config.clusterSeed).toEqual(expected);
  });

  it('refuses the whole seed when one entry is invalid', () => {
    const error = configErrorOf(() => loadConfig({ env: { FASTPACA_CLUSTER_SEED: 'a:4001,b:99999' } }));
    expect(error.message).toBe(
      'FASTPACA_CLUSTER_SEED=a:4001,b:99999 (env): must be a comma-separated list of host:port ' +
        '(or one DNS name resolving to every node)',
    );
  });

  it('refuses more than 128 peers', () => {
    const seed = Array.from({ length: 129 }, (_, index) => `node-${index}:4000`).join(',');
    expect(configErrorOf(() => loadConfig({ env: { FASTPACA_CLUSTER_SEED: seed } })).option).toBe(
      'clusterSeed',
    );
  });
});
