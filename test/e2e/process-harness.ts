// Runs the real `fastpaca serve` binary (dist/src/cli/main.js, built by `npm run build`) as a child
// process, so a test can SIGKILL it and restart it on the same data directory. Every child started
// here is remembered and killed by pid in killAllProcessNodes(), which tests call in afterAll.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const cliPath = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ProcessNode {
  readonly pid: number;
  readonly base: string;
  readonly port: number;
  readonly raftPort: number;
  readonly dataDir: string;
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<ProcessExit>;
  /** The last stdout/stderr output, for failure messages. */
  output(): string;
  /** Sends the signal and waits (bounded) for the exit. */
  kill(signal: NodeJS.Signals, timeoutMs?: number): Promise<ProcessExit>;
}

export interface ProcessNodeOptions {
  readonly dataDir: string;
  /** Ports to bind; fresh free ones when absent. */
  readonly port?: number;
  readonly raftPort?: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
  /** Start under this `ulimit -n` (a shell sets it, then execs Node: the pid stays the node's). */
  readonly openFilesLimit?: number;
}

const children = new Set<ChildProcess>();
const outputBytesMax = 64 * 1024;

/** A port that was free a moment ago: bind port 0 on 127.0.0.1, read it, close. */
/** Whether 127.0.0.1:`port` can be listened on right now. */
const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

// Ports for the processes tests start come from below the kernel's ephemeral range (32768 and up on
// Linux): a port listen(0) handed out is free only until some outgoing connection of this or
// another test takes it as its local port, which fails the child's bind. Each vitest worker counts
// through its own slice (VITEST_POOL_ID), so test files running in parallel never pick the same one.
const portSliceStart = 20_000;
const portSliceSize = 1_000;
const portSlices = 12;
let nextPortOffset = 0;

/** A port on 127.0.0.1 free now and not handed out before by this worker. */
export const freePort = async (): Promise<number> => {
  const pool = Number.parseInt(process.env.VITEST_POOL_ID ?? '1', 10);
  const sliceStart =
    portSliceStart + ((Number.isInteger(pool) && pool > 0 ? pool - 1 : 0) % portSlices) * portSliceSize;
  for (let attempt = 0; attempt < portSliceSize; attempt += 1) {
    const port = sliceStart + (nextPortOffset % portSliceSize);
    nextPortOffset += 1;
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${sliceStart}..${sliceStart + portSliceSize - 1}`);
};

/** The parent's environment without any fastpaca setting, so the child sees only what the test sets. */
export const hermeticEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('FASTPACA_') || name === 'PORT' || name === 'DATABASE_URL') continue;
    env[name] = value;
  }
  return { ...env, FASTPACA_TOKEN_ESTIMATOR: 'chars4', FASTPACA_LOG_LEVEL: 'warn', ...extra };
};

export const startProcessNode = async (options: ProcessNodeOptions): Promise<ProcessNode> => {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
  const port = options.port ?? (await freePort());
  const raftPort = options.raftPort ?? (await freePort());
  const args = [
    cliPath,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--raft-port',
    String(raftPort),
    '--data-dir',
    options.dataDir,
  ];
  const limit = options.openFilesLimit;
  const child =
    limit === undefined
      ? spawn(process.execPath, args, {
          env: hermeticEnv(options.env ?? {}),
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn('/bin/sh', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, ...args], {
          env: hermeticEnv(options.env ?? {}),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  children.add(child);
  let output = '';
  const record = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-outputBytesMax);
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${cliPath}`);
  const base = `http://127.0.0.1:${port}`;
  const node: ProcessNode = {
    pid,
    base,
    port,
    raftPort,
    dataDir: options.dataDir,
    exited,
    output: () => output,
    kill: async (signal, timeoutMs = 10_000) => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
      return withTimeout(exited, timeoutMs, `pid ${pid} did not exit within ${timeoutMs} ms of ${signal}`);
    },
  };
  try {
    await waitReady(node, options.readyTimeoutMs ?? 20_000);
  } catch (error) {
    await node.kill('SIGKILL');
    throw error;
  }
  return node;
};

/** Polls /health/ready until 200; fails early with the child's output if it exits first. */
const waitReady = async (node: ProcessNode, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let exit: ProcessExit | undefined;
  void node.exited.then((value) => (exit = value));
  for (;;) {
    if (exit !== undefined) {
      throw new Error(`fastpaca exited (${JSON.stringify(exit)}) before ready:\n${node.output()}`);
    }
    try {
      const response = await fetch(`${node.base}/health/ready`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`fastpaca not ready within ${timeoutMs} ms:\n${node.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};

const withTimeout = <T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** SIGKILLs every child this module started that is still running, by pid. */
export const killAllProcessNodes = (): void => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  children.clear();
};
