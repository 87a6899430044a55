// Watches the free space of the data directory's file system. Below the configured floor the node
// stops taking writes before LevelDB runs out of space: a store write that fails is fatal by design
// (the process exits rather than retry in place), so a full disk would otherwise crash every
// replica writing to it at once, and crash-loop them on restart. Reads go on; writes come back
// once space is freed (compactions, an operator, the archiver's trimming).
//
// A poll every second rather than a check per write: statfs is a syscall and the floor is a margin,
// not an exact quota.
import { statfs } from 'node:fs/promises';

export interface DiskGuard {
  /** Why writes are refused now, or undefined while free space is above the floor. */
  refusal(): string | undefined;
  stop(): void;
}

export interface DiskGuardOptions {
  readonly dir: string;
  /** Free bytes below which writes are refused; 0 turns the guard off. */
  readonly floorBytes: number;
  readonly intervalMs?: number;
  /** Free bytes on the file system holding `dir`; tests replace it. */
  readonly freeBytes?: (dir: string) => Promise<number>;
  /** Told when the state changes (for the log and readiness). */
  readonly onChange?: (low: boolean, freeBytes: number) => void;
}

const statfsFreeBytes = async (dir: string): Promise<number> => {
  const stats = await statfs(dir);
  return stats.bavail * stats.bsize;
};

export const startDiskGuard = async (options: DiskGuardOptions): Promise<DiskGuard> => {
  if (options.floorBytes === 0) return { refusal: () => undefined, stop: () => {} };
  const freeBytes = options.freeBytes ?? statfsFreeBytes;
  let reason: string | undefined;
  let checking = false;
  const check = async (): Promise<void> => {
    if (checking) return;
    checking = true;
    try {
      const free = await freeBytes(options.dir);
      const low = free < options.floorBytes;
      if (low === (reason !== undefined)) return;
      reason = low
        ? `Free disk space on this node is below ${options.floorBytes} bytes; writes are refused until space is freed`
        : undefined;
      options.onChange?.(low, free);
    } catch {
      // A failed statfs says nothing about space: keep the last state and ask again next time.
    } finally {
      checking = false;
    }
  };
  await check();
  const timer = setInterval(() => void check(), options.intervalMs ?? 1000);
  timer.unref();
  return { refusal: () => reason, stop: () => clearInterval(timer) };
};
