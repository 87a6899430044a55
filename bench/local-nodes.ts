// Nodes a benchmark starts itself (--spawn 1|3): real `fastpaca serve` processes on 127.0.0.1, each
// with its own data directory under one temporary root, three of them as one cluster (a seed and a
// secret). A node can be killed and restarted on its data (cold start, failover), and every process
// started here is stopped by its pid in close(), also when the benchmark fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fastpacaCommand } from './self-command.js';

export const benchClusterSecret = 'bench-cluster-secret-0123456789abcdef';
export const clusterSecretHeader = 'x-fastpaca-cluster-secret';

export interface LocalNode {
  readonly name: string;
  readonly url: string;
  readonly dataDir: string;
  pid(): number | undefined;
  alive(): boolean;
  /** Sends the signal and waits (at most 10 s, then SIGKILL) for the exit. */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Starts the process again on the same ports and data directory (after kill). */
  start(): void;
  rssBytes(): number;
}

export interface LocalNodesOptions {
  readonly count: 1 | 3;
  /** Extra environment for every node (NAME=VALUE pairs already split). */
  readonly env?: Readonly<Record<string, string>>;
  /** Node/V8 flags before the script, e.g. --max-old-space-size=512. */
  readonly nodeArgs?: readonly string[];
  readonly apiKey?: string;
}

export interface LocalNodes {
  readonly nodes: readonly LocalNode[];
  readonly root: string;
  /** Kills every node still running (SIGKILL) and removes the data. */
  close(): Promise<void>;
}

/** A port free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
export const freePort = (): Promise<number> =>
  new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? done(port) : fail(new Error('no port assigned'))));
    });
  });

/** Our environment minus any FASTPACA_* setting of the developer's, plus the node's own. */
const nodeEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('FASTPACA_') && name !== 'PORT' && name !== 'DATABASE_URL') env[name] = value;
  }
  return { ...env, FASTPACA_LOG_LEVEL: 'warn', ...extra };
};

export const startLocalNodes = async (options: LocalNodesOptions): Promise<LocalNodes> => {
  const root = mkdtempSync(join(tmpdir(), 'fastpaca-bench-'));
  const ports: { http: number; raft: number }[] = [];
  for (let i = 0; i < options.count; i++) ports.push({ http: await freePort(), raft: await freePort() });
  const clustered = options.count > 1;
  const seed = ports.map(({ http }) => `127.0.0.1:${http}`).join(',');
  const [program, ...programArgs] = fastpacaCommand();
  const nodes = ports.map(({ http, raft }, i): LocalNode => {
    const name = `node-${i + 1}`;
    const dataDir = join(root, name);
    let child: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
    const start = (): void => {
      if (alive()) throw new Error(`${name} is already running`);
      const args = [...(options.nodeArgs ?? []), ...programArgs, 'serve', '--host', '127.0.0.1'];
      args.push('--port', String(http), '--raft-port', String(raft), '--data-dir', dataDir);
      child = spawn(program as string, args, {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: nodeEnv({
          FASTPACA_NODE_NAME: name,
          ...(clustered ? { FASTPACA_CLUSTER_SEED: seed, FASTPACA_CLUSTER_SECRET: benchClusterSecret } : {}),
          ...(options.apiKey === undefined ? {} : { FASTPACA_API_KEY: options.apiKey }),
          ...options.env,
        }),
      });
      const current = child;
      exited = new Promise<void>((done) => current.once('exit', () => done()));
    };
    return {
      name,
      url: `http://127.0.0.1:${http}`,
      dataDir,
      pid: () => child?.pid,
      alive,
      start,
      kill: async (signal = 'SIGKILL') => {
        const pid = child?.pid;
        if (pid === undefined || !alive()) return;
        process.kill(pid, signal);
        await Promise.race([exited, sleep(10_000)]);
        if (alive()) process.kill(pid, 'SIGKILL');
        await exited;
      },
      rssBytes: () => {
        try {
          const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child?.pid}/status`, 'utf8'));
          return match ? Number(match[1]) * 1024 : 0;
        } catch {
          return 0;
        }
      },
    };
  });
  for (const node of nodes) node.start();
  return {
    nodes,
    root,
    close: async () => {
      await Promise.all(nodes.map((node) => node.kill('SIGKILL')));
      rmSync(root, { recursive: true, force: true });
    },
  };
};

/** Polls `/health/<path>` until 200; the ms it took. Fails early if the node exits. */
export const waitHealthy = async (
  node: LocalNode | string,
  path: 'live' | 'ready',
  timeoutMs: number,
): Promise<number> => {
  const url = typeof node === 'string' ? node : node.url;
  const startedMs = performance.now();
  for (;;) {
    if (typeof node !== 'string' && !node.alive())
      throw new Error(`${node.name} exited before it was ${path}`);
    try {
      const response = await fetch(`${url}/health/${path}`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - startedMs;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - startedMs > timeoutMs)
      throw new Error(`${url} not ${path} within ${timeoutMs} ms`);
    await sleep(20);
  }
};
