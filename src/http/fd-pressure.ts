// File descriptors as a resource a client can exhaust. Every HTTP connection holds one, and so does
// everything the node itself needs: LevelDB's log and table files, peer connections, the archive's
// pool. Measured: two clients holding 24,000 keep-alive connections filled a node's 20,000 and the
// next LevelDB log rotation failed ("Too many open files"), which stops the node. uWebSockets.js
// gives no hook to refuse a connection at accept (no connection count, and its listen socket cannot
// be reopened on the port while connections live), so the cap is kept one step later: while fewer
// than `reserve` descriptors are free, every request is answered (`/v1` with 503 overloaded and
// Retry-After, the rest as usual) and its connection closed, so descriptors come back as fast as
// clients send; silent connections are closed by uWS after 10 s. Accepting resumes in full once
// twice the reserve is free (hysteresis: no flapping at the edge).
//
// Linux only (/proc); elsewhere the watch is off. Counting reads /proc/self/fd on the thread pool,
// every second, every 100 ms once half the limit is used.

import { readdir, readFile } from 'node:fs/promises';

export interface FdPressureLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface FdPressureOptions {
  /** Descriptors kept free for the node's own needs. Capped at a quarter of the limit. */
  readonly reserve: number;
  readonly logger: FdPressureLogger;
  /** Tests: the descriptor limit and the count, instead of /proc. */
  readonly limit?: number;
  readonly count?: () => Promise<number>;
  readonly calmIntervalMs?: number;
  readonly busyIntervalMs?: number;
}

export interface FdPressure {
  /** True while fewer than the reserve are free (until twice the reserve is free again). */
  pressed(): boolean;
  stop(): void;
}

/** The soft limit on open files of this process (`ulimit -n`), or undefined when unknown. */
export const openFilesLimit = async (): Promise<number | undefined> => {
  try {
    const limits = await readFile('/proc/self/limits', 'utf8');
    const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
};

/** Open descriptors of this process; at the limit itself, reading the directory fails: Infinity. */
const countOpenFds = async (): Promise<number> => {
  try {
    return (await readdir('/proc/self/fd')).length;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
};

const off: FdPressure = { pressed: () => false, stop: () => {} };

export const watchFdPressure = async (options: FdPressureOptions): Promise<FdPressure> => {
  const limit = options.limit ?? (await openFilesLimit());
  if (limit === undefined || !Number.isFinite(limit)) return off;
  const count = options.count ?? countOpenFds;
  const reserve = Math.max(1, Math.min(options.reserve, Math.floor(limit / 4)));
  const calmMs = options.calmIntervalMs ?? 1_000;
  const busyMs = options.busyIntervalMs ?? 100;
  let pressed = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const check = async (): Promise<void> => {
    const used = await count();
    if (stopped) return;
    const free = limit - used;
    if (!pressed && free < reserve) {
      pressed = true;
      options.logger.warn(
        { type: 'fd_pressure', used: Number.isFinite(used) ? used : limit, limit, reserve },
        'File descriptors nearly exhausted: answering every request with its connection closed, /v1 with 503, ' +
          'until twice the reserve is free (raise ulimit -n, or put a proxy with a connection limit in front)',
      );
    } else if (pressed && free >= 2 * reserve) {
      pressed = false;
      options.logger.info({ type: 'fd_pressure_over', used, limit }, 'File descriptors free again');
    }
    timer = setTimeout(() => void check(), used * 2 >= limit ? busyMs : calmMs);
    timer.unref();
  };
  await check();
  return {
    pressed: () => pressed,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
};
