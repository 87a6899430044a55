// config.sample.toml is generated from the option table and must never drift from it: the committed
// file equals renderSampleConfig(), documents every option, and loading it changes nothing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { optionKeys, options, type OptionSpec } from '../../src/config/options.js';
import { renderSampleConfig } from '../../src/config/sample-config.js';
import { useTempDirs, writeToml } from './helpers.js';

const samplePath = fileURLToPath(new URL('../../config.sample.toml', import.meta.url));

describe('config.sample.toml', () => {
  const tempDir = useTempDirs();
  const committed = readFileSync(samplePath, 'utf8');

  it('equals the rendering of the option table (regenerate: fastpaca config sample > config.sample.toml)', () => {
    expect(committed).toBe(renderSampleConfig());
  });

  it('is valid TOML that documents every option with its variable, flag and key', () => {
    parse(committed);
    for (const key of optionKeys) {
      const option: OptionSpec = options[key];
      expect(committed).toContain(`# env ${option.env}, flag --${option.flag}, default `);
      const leaf = option.toml.slice(option.toml.lastIndexOf('.') + 1);
      expect(committed).toMatch(new RegExp(`^(# )?${leaf} = `, 'm'));
    }
  });

  it('loads to exactly the defaults', () => {
    const cwd = '/srv/fastpaca';
    const fromSample = loadConfig({ flags: { config: samplePath }, env: {}, cwd });
    const defaults = loadConfig({ env: {}, cwd });
    expect(fromSample.config).toEqual(defaults.config);
    // Values the sample sets are read from it; derived and optional ones stay commented out.
    expect(fromSample.sources.get('port')?.kind).toBe('file');
    expect(fromSample.sources.get('raftPort')?.kind).toBe('default');
    expect(fromSample.config.raftLogRetainEntries).toBe(1000);
  });

  it('shows only examples that are valid values of their options', () => {
    const dir = tempDir();
    for (const key of optionKeys) {
      const option: OptionSpec = options[key];
      if (option.example === undefined) continue;
      const loaded = loadConfig({ flags: { config: writeToml(dir, { [option.toml]: option.example }) } });
      expect(loaded.sources.get(key)?.kind, key).toBe('file');
    }
  });
});
