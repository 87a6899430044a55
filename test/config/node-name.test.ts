// The node's identity survives restarts: persisted in <dataDir>/node-name on first start, read back
// later, and a configured name that contradicts the persisted one is refused.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/config-error.js';
import {
  incarnationFileName,
  nodeNameFileName,
  resolveIncarnation,
  resolveNodeName,
} from '../../src/config/node-name.js';
import { useTempDirs } from './helpers.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('node name', () => {
  const tempDir = useTempDirs();

  it('generates a UUID once and returns it on every later start', async () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const first = await resolveNodeName({ dataDir });
    expect(first).toMatch(uuidPattern);
    expect(readFileSync(join(dataDir, nodeNameFileName), 'utf8')).toBe(`${first}\n`);
    expect(await resolveNodeName({ dataDir })).toBe(first);
    // The configured name matching the stored one is fine; no temporary file is left behind.
    expect(await resolveNodeName({ dataDir, nodeName: first })).toBe(first);
    expect(readdirSync(dataDir)).toEqual([nodeNameFileName]);
  });

  it('persists a configured name and keeps it when later starts configure none', async () => {
    const dataDir = tempDir();
    expect(await resolveNodeName({ dataDir, nodeName: 'node-1' })).toBe('node-1');
    expect(await resolveNodeName({ dataDir })).toBe('node-1');
  });

  it('refuses a configured name that contradicts the data directory', async () => {
    const dataDir = tempDir();
    await resolveNodeName({ dataDir, nodeName: 'node-1' });
    const refusal = resolveNodeName({ dataDir, nodeName: 'node-2' });
    await expect(refusal).rejects.toBeInstanceOf(ConfigError);
    await expect(refusal).rejects.toMatchObject({
      option: 'nodeName',
      message: expect.stringContaining('belongs to node "node-1"') as unknown,
    });
    expect(readFileSync(join(dataDir, nodeNameFileName), 'utf8').trim()).toBe('node-1');
  });

  it('accepts a stored name with surrounding whitespace, refuses garbage', async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, nodeNameFileName), '  node-7 \n\n');
    expect(await resolveNodeName({ dataDir })).toBe('node-7');
    writeFileSync(join(dataDir, nodeNameFileName), 'not a name\n');
    await expect(resolveNodeName({ dataDir })).rejects.toMatchObject({
      option: 'nodeName',
      message: expect.stringContaining('holds no valid node name') as unknown,
    });
    writeFileSync(join(dataDir, nodeNameFileName), '');
    await expect(resolveNodeName({ dataDir })).rejects.toBeInstanceOf(ConfigError);
  });

  it('fails when the data directory cannot be created', async () => {
    const blocker = join(tempDir(), 'file');
    writeFileSync(blocker, 'x');
    await expect(resolveNodeName({ dataDir: join(blocker, 'data') })).rejects.toThrow();
    expect(existsSync(join(blocker, 'data'))).toBe(false);
  });

  it('gives a data directory one incarnation for good, and an emptied one a new incarnation', async () => {
    const dataDir = join(tempDir(), 'data');
    const first = await resolveIncarnation(dataDir);
    expect(first).toMatch(uuidPattern);
    expect(readFileSync(join(dataDir, incarnationFileName), 'utf8')).toBe(`${first}\n`);
    expect(await resolveIncarnation(dataDir)).toBe(first);
    const emptied = join(tempDir(), 'data');
    expect(await resolveIncarnation(emptied)).not.toBe(first);
    writeFileSync(join(dataDir, incarnationFileName), 'not/valid\n');
    await expect(resolveIncarnation(dataDir)).rejects.toBeInstanceOf(ConfigError);
  });
});
