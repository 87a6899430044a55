// `fastpaca snapshot create`: a consistent point-in-time backup of a running node, with progress
// and a checksum (src/snapshot/create.ts). `fastpaca snapshot restore`: writes such a backup into
// the data directory of a stopped or new node, after checking it end to end (src/snapshot/restore.ts).
import { resolve } from 'node:path';

import type { Argv } from 'yargs';

import { SnapshotFormatError } from '../snapshot/format.js';
import { createSnapshot, SnapshotCommandError, type SnapshotProgress } from '../snapshot/create.js';
import { restoreSnapshot } from '../snapshot/restore.js';
import { defaultStatusUrl } from './cluster-command.js';
import { exitCodes } from './exit-codes.js';

export interface SnapshotCommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

const apiKeyEnv = 'FASTPACA_API_KEY';

const mebibytes = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

const progressLine =
  (io: SnapshotCommandIo, verb: string) =>
  (progress: SnapshotProgress & { readonly phase?: string }): void =>
    io.stderr(
      `snapshot: ${progress.phase ?? verb} ${mebibytes(progress.bytes)}, ${progress.pairs.toLocaleString('en-US')} pairs\n`,
    );

/** Known failures get one line and exit 1; anything else is a bug and propagates. */
const failed = (io: SnapshotCommandIo, error: unknown): number => {
  if (error instanceof SnapshotFormatError) {
    io.stderr(`fastpaca: the snapshot is corrupt or not a snapshot: ${error.message}\n`);
    return exitCodes.failure;
  }
  if (error instanceof SnapshotCommandError) {
    io.stderr(`fastpaca: ${error.message}\n`);
    return exitCodes.failure;
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && error instanceof Error) {
    io.stderr(`fastpaca: ${error.message}\n`);
    return exitCodes.failure;
  }
  throw error;
};

export const snapshotCommand = <T>(
  command: Argv<T>,
  io: SnapshotCommandIo,
  setWork: (work: () => Promise<number>) => void,
): Argv<T> =>
  command
    .usage('$0 snapshot <create|restore> [options]')
    .command(
      'create',
      'Stream a consistent point-in-time backup of a running node into a file (no downtime), with progress and a SHA-256',
      (sub) =>
        sub
          .option('url', { type: 'string', default: defaultStatusUrl, describe: "The node's HTTP address" })
          .option('out', { type: 'string', demandOption: true, describe: 'The file to write' })
          .option('api-key', {
            type: 'string',
            describe: `An API key of the node, if it has any (default: the first of $${apiKeyEnv})`,
          })
          .option('force', { type: 'boolean', default: false, describe: 'Replace an existing file' })
          .epilog(
            'Writes <out> and <out>.sha256. Exit codes: 0 written and verified; 1 refused, unreachable or cut short; 2 invalid command line.',
          ),
      (argv) => {
        const record = argv as Readonly<Record<string, unknown>>;
        const url = typeof record['url'] === 'string' ? record['url'] : defaultStatusUrl;
        const out = resolve(io.cwd, String(record['out']));
        const flagKey = record['api-key'];
        const apiKey = typeof flagKey === 'string' ? flagKey : io.env[apiKeyEnv]?.split(',')[0];
        const force = record['force'] === true;
        setWork(async () => {
          try {
            const created = await createSnapshot({
              url,
              out,
              apiKey,
              force,
              onProgress: progressLine(io, 'received'),
            });
            io.stdout(
              `${JSON.stringify({
                file: out,
                node: created.header.node_name,
                created_at: created.header.created_at,
                clustered: created.header.clustered,
                bytes: created.bytes,
                pairs: created.pairs,
                sha256: created.fileSha256,
              })}\n`,
            );
            return exitCodes.ok;
          } catch (error) {
            return failed(io, error);
          }
        });
      },
    )
    .command(
      'restore <file>',
      'Write a snapshot into the data directory of a stopped or new node, after verifying its checksum',
      (sub) =>
        sub
          .positional('file', { type: 'string', demandOption: true, describe: 'The snapshot file' })
          .option('data-dir', { type: 'string', demandOption: true, describe: "The node's data directory" })
          .option('force', {
            type: 'boolean',
            default: false,
            describe: 'Replace the contents of a non-empty data directory (its node must be stopped)',
          })
          .epilog(
            'Exit codes: 0 restored; 1 corrupt file, non-empty directory without --force, or a node running on it; 2 invalid command line.',
          ),
      (argv) => {
        const record = argv as Readonly<Record<string, unknown>>;
        const file = resolve(io.cwd, String(record['file']));
        const dataDir = resolve(io.cwd, String(record['data-dir']));
        const force = record['force'] === true;
        setWork(async () => {
          try {
            const restored = await restoreSnapshot({
              file,
              dataDir,
              force,
              onProgress: progressLine(io, 'read'),
            });
            io.stdout(
              `${JSON.stringify({
                data_dir: dataDir,
                node: restored.header.node_name,
                created_at: restored.header.created_at,
                pairs: restored.pairs,
                sha256_verified: true,
              })}\n`,
            );
            return exitCodes.ok;
          } catch (error) {
            return failed(io, error);
          }
        });
      },
    )
    .demandCommand(1, 'Give a snapshot command: create or restore.');
