// Starts a raft process (dist/bench/raft-process/main.js) as a child of this one and waits for its ready
// line, which carries the bound ports. Shared by the real-I/O tests and the Raft benchmark; callers
// track the returned pid and stop it themselves (stop() or SIGKILL), so nothing outlives them.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { NodeId } from '../../raft/index.js';

/**
 * The compiled entry point: beside this file once built (dist/bench/raft-process/), or under dist/ when this
 * module runs from source (vitest); the child always runs compiled code.
 */
export const defaultMainJs = (): string => {
  const beside = resolve(import.meta.dirname, 'main.js');
  return existsSync(beside) ? beside : resolve(import.meta.dirname, '../../dist/bench/raft-process/main.js');
};

export interface LaunchOptions {
  readonly id: NodeId;
  readonly dataDir: string;
  readonly members: readonly NodeId[];
  readonly groups: number;
  readonly secret: string;
  readonly raftPort?: number;
  readonly httpPort?: number;
  readonly peers?: ReadonlyMap<NodeId, string>;
  /** Extra flags for main.js, e.g. ['--tick-ms', '20']. */
  readonly args?: readonly string[];
  /** Flags for node itself, e.g. ['--cpu-prof']. */
  readonly nodeArgs?: readonly string[];
  /** Where the child's stderr goes: kept (last 8 KiB, see stderr()) or inherited. Default 'keep'. */
  readonly stderr?: 'keep' | 'inherit';
  readonly readyTimeoutMs?: number;
  readonly mainJs?: string;
}

export interface LaunchedProcess {
  readonly id: NodeId;
  readonly pid: number;
  readonly dataDir: string;
  readonly raftPort: number;
  readonly httpPort: number;
  /** host:port of its Raft transport. */
  readonly raftAddress: string;
  readonly controlUrl: string;
  readonly child: ChildProcess;
  stderr(): string;
  alive(): boolean;
  /** Resolves once the process has exited. */
  exited(): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface Spawned {
  readonly pid: number;
  /** Resolves with the ready process, or rejects (the child is killed) if it is not ready in time. */
  readonly ready: Promise<LaunchedProcess>;
}

/** Spawns the process; the pid is available at once so a caller can track it before it is ready. */
export const launchRaftProcess = (options: LaunchOptions): Spawned => {
  const mainJs = options.mainJs ?? defaultMainJs();
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npm run build\` first`);
  const args = [
    ...(options.nodeArgs ?? []),
    mainJs,
    '--id',
    options.id,
    '--data-dir',
    options.dataDir,
    '--members',
    options.members.join(','),
    '--groups',
    String(options.groups),
    '--raft-port',
    String(options.raftPort ?? 0),
    '--http-port',
    String(options.httpPort ?? 0),
    ...(options.peers !== undefined && options.peers.size > 0
      ? ['--peers', [...options.peers].map(([id, address]) => `${id}=${address}`).join(',')]
      : []),
    ...(options.args ?? []),
  ];
  // The secret travels in the environment, not argv, so `ps` does not show it.
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', options.stderr === 'inherit' ? 'inherit' : 'pipe'],
    env: { ...process.env, FASTPACA_CLUSTER_SECRET: options.secret },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn raft process ${options.id}`);
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-8192);
  });
  const exit = new Promise<void>((done) => child.once('exit', () => done()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const stop = async (graceMs = 5_000): Promise<void> => {
    if (!alive()) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([
      exit.then(() => true),
      new Promise<boolean>((done) => (timer = setTimeout(() => done(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!gone && alive()) {
      child.kill('SIGKILL');
      await exit;
    }
  };

  const ready = new Promise<LaunchedProcess>((done, fail) => {
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`raft process ${options.id} not ready in ${timeoutMs} ms: ${stderrTail}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      let parsed: { event?: unknown; raftPort?: unknown; httpPort?: unknown };
      try {
        parsed = JSON.parse(line) as typeof parsed;
      } catch {
        return;
      }
      if (
        parsed.event !== 'ready' ||
        typeof parsed.raftPort !== 'number' ||
        typeof parsed.httpPort !== 'number'
      ) {
        return;
      }
      clearTimeout(timer);
      done({
        id: options.id,
        pid,
        dataDir: options.dataDir,
        raftPort: parsed.raftPort,
        httpPort: parsed.httpPort,
        raftAddress: `127.0.0.1:${parsed.raftPort}`,
        controlUrl: `http://127.0.0.1:${parsed.httpPort}`,
        child,
        stderr: () => stderrTail,
        alive,
        exited: () => exit,
        stop,
      });
    });
    void exit.then(() => {
      clearTimeout(timer);
      fail(
        new Error(`raft process ${options.id} exited before ready (code ${child.exitCode}): ${stderrTail}`),
      );
    });
  });
  return { pid, ready };
};
