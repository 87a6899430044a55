// `fastpaca snapshot restore`: checks a snapshot file end to end (format, pair count, SHA-256)
// before touching anything, then writes it into a data directory that is empty (or, with force,
// whose node is stopped): LevelDB's pairs into <data_dir>/store, the node's name into
// <data_dir>/node-name. A marker file stands in the directory while it is being written, and a node
// refuses to start on a directory that holds it, so a restore cut short is never served.
//
// The data directory's incarnation is deliberately not restored: a restored directory is a new
// incarnation, so a cluster that still lists the node under its old one refuses it rather than let
// an older copy vote or count toward a quorum with promises it forgot (README "Backup and restore").

import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { BatchOp } from '../../raft/index.js';
import { openLevelStore } from '../../raft/index.js';
import { nodeNameFileName, writeDurably } from '../config/node-name.js';
import { storeDirName } from '../node/node.js';
import { syncDirectory, SnapshotCommandError, type SnapshotProgress } from './create.js';
import { SnapshotParser, type SnapshotSummary } from './format.js';
import { restoreMarkerFileName } from './restore-marker.js';

export interface RestoreSnapshotOptions {
  readonly file: string;
  readonly dataDir: string;
  /** Replace a non-empty data directory's contents (its node must be stopped). */
  readonly force?: boolean;
  readonly onProgress?: (progress: SnapshotProgress & { readonly phase: 'verify' | 'write' }) => void;
}

/** Reads the file through a parser; every complete pair goes to `onPair` (awaited in order). */
const readSnapshotFile = async (
  file: string,
  onPair: ((key: Buffer, value: Buffer) => Promise<void>) | undefined,
  onProgress: (progress: SnapshotProgress) => void,
): Promise<SnapshotSummary> => {
  const queued: [Buffer, Buffer][] = [];
  let pairs = 0;
  const parser = new SnapshotParser((key, value) => {
    pairs += 1;
    if (onPair !== undefined) queued.push([key, value]);
  });
  let bytes = 0;
  let lastReport = Date.now();
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    parser.push(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    for (const [key, value] of queued.splice(0)) await onPair?.(key, value);
    if (Date.now() - lastReport >= 1_000) {
      lastReport = Date.now();
      onProgress({ bytes, pairs });
    }
  }
  const summary = parser.finish();
  onProgress({ bytes, pairs });
  return summary;
};

const entriesOf = async (dir: string): Promise<string[]> => {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
};

/** Refuses a directory a running node holds: LevelDB's lock says so. */
const assertStoreNotInUse = async (storeDir: string): Promise<void> => {
  if (
    !(await stat(storeDir).then(
      () => true,
      () => false,
    ))
  )
    return;
  let store;
  try {
    store = await openLevelStore(storeDir);
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? cause.message : error instanceof Error ? error.message : '';
    throw new SnapshotCommandError(
      `${storeDir} cannot be opened (${detail}): a node is probably running on this data directory; stop it first`,
    );
  }
  await store.close();
};

const batchBytesMax = 4 * 1024 * 1024;

export const restoreSnapshot = async (options: RestoreSnapshotOptions): Promise<SnapshotSummary> => {
  const report = (phase: 'verify' | 'write') => (progress: SnapshotProgress) =>
    options.onProgress?.({ ...progress, phase });
  // 1. The whole file checks out before the data directory is touched.
  const verified = await readSnapshotFile(options.file, undefined, report('verify'));

  // 2. The directory is empty, or (forced) its node is stopped; then it is emptied.
  const present = await entriesOf(options.dataDir);
  if (present.length > 0 && options.force !== true) {
    throw new SnapshotCommandError(
      `${options.dataDir} is not empty (${present.slice(0, 5).join(', ')}): restore into an empty directory, or pass --force to replace its contents (stop its node first)`,
    );
  }
  const storeDir = join(options.dataDir, storeDirName);
  await assertStoreNotInUse(storeDir);
  await mkdir(options.dataDir, { recursive: true });
  const marker = join(options.dataDir, restoreMarkerFileName);
  await writeFile(marker, `restore of ${options.file} started ${new Date().toISOString()}\n`);
  await syncDirectory(options.dataDir);
  for (const entry of present) {
    if (entry !== restoreMarkerFileName)
      await rm(join(options.dataDir, entry), { recursive: true, force: true });
  }

  // 3. The pairs, in batches.
  const store = await openLevelStore(storeDir);
  let written: SnapshotSummary;
  try {
    let batch: BatchOp[] = [];
    let batchBytes = 0;
    let last: BatchOp | undefined;
    written = await readSnapshotFile(
      options.file,
      async (key, value) => {
        last = { type: 'put', key, value };
        batch.push(last);
        batchBytes += key.length + value.length;
        if (batchBytes >= batchBytesMax) {
          await store.write(batch, { sync: false });
          batch = [];
          batchBytes = 0;
        }
      },
      report('write'),
    );
    // The last write is synced (LevelDB's log is written in order, so this makes all of it durable);
    // when the last batch happens to be empty, the last pair is put again, unchanged.
    if (batch.length === 0 && last !== undefined) batch.push(last);
    await store.write(batch, { sync: true });
  } finally {
    await store.close();
  }
  if (written.digest !== verified.digest)
    throw new SnapshotCommandError(`${options.file} changed while it was being restored`);

  // 4. The node's name, then the marker goes: the directory is whole.
  await writeDurably(options.dataDir, join(options.dataDir, nodeNameFileName), written.header.node_name);
  await rm(marker);
  await syncDirectory(options.dataDir);
  return written;
};
