// A node's identity must survive restarts: Raft membership names nodes, and a restarted node that
// came back under a new name would be a stranger holding another node's log. So the name is stored
// in <dataDir>/node-name the first time the node starts (a random UUID unless FASTPACA_NODE_NAME
// gives one), and every later start reads it back.
//
// A name alone cannot tell a restart from a replacement: a node whose data directory was emptied
// and that starts under its old name (a Kubernetes pod with a new volume, say) has forgotten its
// votes and logs, and must not count as the voter it was. So the data directory also holds an
// incarnation, a random id made when the directory is first used: same directory, same incarnation.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { ConfigError } from './config-error.js';

export const nodeNameFileName = 'node-name';
export const incarnationFileName = 'incarnation';
/** What an incarnation looks like (a UUID, as made here), on disk and on the wire. */
export const incarnationPattern = /^[A-Za-z0-9-]{1,64}$/;

const validName = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/**
 * The node's name: the one persisted in the data directory, else the configured one (or a new
 * UUID), which is then persisted. A configured name that contradicts the persisted one is refused:
 * the data directory belongs to another node.
 */
export const resolveNodeName = async (config: Pick<Config, 'dataDir' | 'nodeName'>): Promise<string> => {
  const path = join(config.dataDir, nodeNameFileName);
  const stored = await readStoredName(path);
  if (stored !== undefined) {
    if (config.nodeName !== undefined && config.nodeName !== stored) {
      throw new ConfigError(
        `FASTPACA_NODE_NAME=${config.nodeName} (--node-name): the data directory ${config.dataDir} ` +
          `belongs to node "${stored}"; start with that name, or with an empty data directory`,
        { option: 'nodeName' },
      );
    }
    return stored;
  }
  const name = config.nodeName ?? randomUUID();
  await mkdir(config.dataDir, { recursive: true });
  await writeDurably(config.dataDir, path, name);
  return name;
};

/** This data directory's incarnation: the stored one, else a new random one, then stored. */
export const resolveIncarnation = async (dataDir: string): Promise<string> => {
  const path = join(dataDir, incarnationFileName);
  const stored = await readStored(path);
  if (stored !== undefined) {
    if (!incarnationPattern.test(stored)) {
      throw new ConfigError(
        `${path}: holds no valid incarnation; without the file this node starts as a new one, which a cluster it belonged to refuses until \`fastpaca cluster remove\` drops the old one`,
        {
          option: 'dataDir',
        },
      );
    }
    return stored;
  }
  const incarnation = randomUUID();
  await mkdir(dataDir, { recursive: true });
  await writeDurably(dataDir, path, incarnation);
  return incarnation;
};

const readStored = async (path: string): Promise<string | undefined> => {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

const readStoredName = async (path: string): Promise<string | undefined> => {
  const name = await readStored(path);
  if (name === undefined) return undefined;
  if (!validName.test(name)) {
    throw new ConfigError(`${path}: holds no valid node name; fix or remove the file`, {
      option: 'nodeName',
    });
  }
  return name;
};

/** Write to a temporary file, fsync, rename over the target, fsync the directory: all or nothing. */
export const writeDurably = async (dir: string, path: string, content: string): Promise<void> => {
  const temporary = `${path}.tmp-${process.pid}`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(`${content}\n`, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
};
