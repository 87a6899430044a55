// `fastpaca snapshot create`: streams GET /v1/admin/snapshot from a running node into a file,
// checking the stream as it arrives (format, pair count, the node's SHA-256 digest), then fsyncs and
// renames it into place, with `<file>.sha256` beside it (sha256sum -c format). A partial download
// never takes the file's name.

import { createHash } from 'node:crypto';
import { open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { SnapshotParser, type SnapshotHeader } from './format.js';
import { snapshotPath } from './snapshot-route.js';

export interface SnapshotProgress {
  readonly bytes: number;
  readonly pairs: number;
}

export interface CreateSnapshotOptions {
  /** The node's HTTP base URL, e.g. http://127.0.0.1:4000. */
  readonly url: string;
  readonly out: string;
  readonly apiKey?: string | undefined;
  /** Replace an existing file at `out`. */
  readonly force?: boolean;
  /** Milliseconds without a byte from the node before giving up. */
  readonly idleTimeoutMs?: number;
  readonly onProgress?: (progress: SnapshotProgress) => void;
}

export interface CreatedSnapshot {
  readonly header: SnapshotHeader;
  readonly bytes: number;
  readonly pairs: number;
  /** SHA-256 of the whole file (what sha256sum prints). */
  readonly fileSha256: string;
}

/** A failure the operator can act on (node refused, file exists, stream cut short). */
export class SnapshotCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotCommandError';
  }
}

const exists = async (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

export const createSnapshot = async (options: CreateSnapshotOptions): Promise<CreatedSnapshot> => {
  if (options.force !== true && (await exists(options.out)))
    throw new SnapshotCommandError(
      `${options.out} exists; choose another file or pass --force to replace it`,
    );
  const url = new URL(snapshotPath, options.url);
  const controller = new AbortController();
  const idleMs = options.idleTimeoutMs ?? 30_000;
  let idle = setTimeout(() => controller.abort(), idleMs);
  const touch = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(), idleMs);
  };
  const partial = `${options.out}.partial-${process.pid}`;
  try {
    let response: Response;
    try {
      response = await fetch(url, {
        headers: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
        signal: controller.signal,
      });
    } catch (error) {
      throw new SnapshotCommandError(`could not reach ${url.origin}: ${describe(error)}`);
    }
    if (response.status !== 200) {
      const text = await response.text().catch(() => '');
      throw new SnapshotCommandError(`${url.origin} answered HTTP ${response.status}: ${text.slice(0, 500)}`);
    }
    if (response.body === null) throw new SnapshotCommandError(`${url.origin} sent no body`);
    let pairs = 0;
    const parser = new SnapshotParser(() => {
      pairs += 1;
    });
    const fileHash = createHash('sha256');
    const file = await open(partial, 'w');
    let bytes = 0;
    const ticker = setInterval(() => options.onProgress?.({ bytes, pairs }), 1_000);
    try {
      const reader = response.body.getReader();
      for (;;) {
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch (error) {
          throw new SnapshotCommandError(`the stream from ${url.origin} broke: ${describe(error)}`);
        }
        if (next.done) break;
        const chunk: Uint8Array = next.value as Uint8Array;
        touch();
        parser.push(chunk);
        fileHash.update(chunk);
        await file.write(chunk);
        bytes += chunk.byteLength;
      }
      const summary = parser.finish();
      await file.sync();
      await file.close();
      await rename(partial, options.out);
      await syncDirectory(dirname(options.out));
      const fileSha256 = fileHash.digest('hex');
      await writeFile(`${options.out}.sha256`, `${fileSha256}  ${basename(options.out)}\n`);
      options.onProgress?.({ bytes, pairs });
      return { header: summary.header, bytes, pairs: summary.pairs, fileSha256 };
    } finally {
      clearInterval(ticker);
      await file.close().catch(() => undefined);
    }
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  } finally {
    clearTimeout(idle);
  }
};

export const syncDirectory = async (dir: string): Promise<void> => {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

const describe = (error: unknown): string => {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
};
