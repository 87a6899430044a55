// Spawns raft processes (dist/bench/raft-process/main.js, built by `npm run build`) on 127.0.0.1 through the
// shared launcher and talks to their control servers. Every process started here is tracked by pid
// from the moment it is spawned; `killAll` (afterAll) SIGKILLs each one still running and waits for
// it to exit. All waits are bounded.

import type { GroupStatus, ProposeOutcome } from '../../../raft/api.js';
import type { GroupId, NodeId } from '../../../raft/core/types.js';
import type { KvCounterResult } from '../../../bench/raft-process/kv-counter-state-machine.js';
import {
  launchRaftProcess,
  type LaunchedProcess,
  type LaunchOptions,
} from '../../../bench/raft-process/launcher.js';
import type { NodeStatus } from '../../../bench/raft-process/raft-node.js';

const REQUEST_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 10_000;

export type RaftProcess = LaunchedProcess;

const tracked = new Set<number>();

export const spawnRaftProcess = async (options: LaunchOptions): Promise<RaftProcess> => {
  const spawned = launchRaftProcess(options);
  tracked.add(spawned.pid);
  return spawned.ready;
};

/** SIGKILL `proc` and wait (bounded) until it is gone. */
export const sigkill = async (proc: RaftProcess): Promise<void> => {
  tracked.delete(proc.pid);
  if (!proc.alive()) return;
  process.kill(proc.pid, 'SIGKILL');
  await withTimeout(proc.exited(), EXIT_TIMEOUT_MS, `${proc.id} (pid ${proc.pid}) to exit`);
};

/** afterAll: SIGKILLs every process this harness spawned that may still run, then waits a bounded time. */
export const killAll = async (): Promise<void> => {
  const pids = [...tracked];
  tracked.clear();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + EXIT_TIMEOUT_MS;
  while (pids.some(isRunning) && Date.now() < deadline) await sleep(20);
};

const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export const withTimeout = async <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Polls `check` every 50 ms until it returns a value other than undefined; fails after `timeoutMs`. */
export const eventually = async <T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(50);
  }
  const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
};

// ---------------------------------------------------------------------------------------------
// Control API

const json = async <T>(response: Response): Promise<T> => {
  if (!response.ok) throw new Error(`${response.url}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
};

const get = async <T>(proc: RaftProcess, path: string): Promise<T> =>
  json<T>(await fetch(`${proc.controlUrl}${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }));

const post = async <T>(proc: RaftProcess, path: string, body: string | Uint8Array): Promise<T> =>
  json<T>(
    await fetch(`${proc.controlUrl}${path}`, {
      method: 'POST',
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }),
  );

export const getStatus = (proc: RaftProcess): Promise<NodeStatus> => get<NodeStatus>(proc, '/status');

export const setPeers = async (proc: RaftProcess, peers: ReadonlyMap<NodeId, string>): Promise<void> => {
  await post(proc, '/peers', JSON.stringify(Object.fromEntries(peers)));
};

export const propose = (
  proc: RaftProcess,
  group: GroupId,
  entry: Uint8Array,
): Promise<ProposeOutcome<KvCounterResult>> =>
  post<ProposeOutcome<KvCounterResult>>(proc, `/propose?group=${group}&timeoutMs=5000`, entry);

export interface Dump {
  readonly group: GroupId;
  /** An applied index the pairs reflect at least (durable on that node when the dump was read). */
  readonly applied: number;
  /** [key hex, value hex] in key order: the group's whole durable state-machine space. */
  readonly pairs: readonly (readonly [string, string])[];
}

export const dump = (proc: RaftProcess, group: GroupId): Promise<Dump> =>
  get<Dump>(proc, `/dump?group=${group}`);

export const groupStatus = (status: NodeStatus, group: GroupId): GroupStatus => {
  const found = status.groups.find((item) => item.group === group);
  if (found === undefined) throw new Error(`${status.nodeId} does not host group ${group}`);
  return found;
};
