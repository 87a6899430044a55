// Starts a fastpaca node as a child process on 127.0.0.1 for benchmarks and waits until it is ready.
// The caller stops it by pid (stop()), so no benchmark leaves a process behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NodeProcess {
  readonly url: string;
  readonly pid: number;
  rssBytes(): number;
  stop(): Promise<void>;
}

const cliPath = resolve(import.meta.dirname, '../src/cli/main.js');

export const startNodeProcess = async (options: {
  port: number;
  raftPort: number;
  extraEnv?: Record<string, string>;
  /** Node/V8 flags for the node process (e.g. --max-old-space-size=512), before the script. */
  nodeArgs?: readonly string[];
  readyTimeoutMs?: number;
}): Promise<NodeProcess> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-bench-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      cliPath,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--raft-port',
      String(options.raftPort),
      '--data-dir',
      dataDir,
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, FASTPACA_LOG_LEVEL: 'warn', ...options.extraEnv },
    },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the node process');
  const url = `http://127.0.0.1:${options.port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(50);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`node exited early with code ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/health/ready`);
      if (response.status === 200) {
        const rssBytes = (): number => {
          const status = readFileSync(`/proc/${pid}/status`, 'utf8');
          const match = /VmRSS:\s+(\d+) kB/.exec(status);
          return match ? Number(match[1]) * 1024 : 0;
        };
        return { url, pid, rssBytes, stop };
      }
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error('node did not become ready in time');
};
