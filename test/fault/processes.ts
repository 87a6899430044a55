// Real fastpaca nodes for the fault suite, with a TCP proxy (tcp-proxy.ts) on every ordered pair:
// node i dials node j's gRPC port (Raft, forwarded writes, remote reads) through proxy (i → j), named
// to the node by the test-only FASTPACA_FAULT_PEER_ADDRESSES (src/node/fault-injection.ts). HTTP between
// nodes (hello, join) goes direct; so does the workload, except through a client proxy when a test
// asks for one. Each node is `node dist/src/cli/main.js serve` on 127.0.0.1 with its own env, and
// can be SIGKILLed, SIGSTOPped/SIGCONTed, SIGTERMed and restarted on the same ports and data. Every
// process started here is killed by pid in stopAll() (SIGCONT first, in case it was stopped), which
// tests call in afterAll/afterEach. Nodes are structurally ClusterNodes, so the cluster harness's
// helpers (status, readiness, export) work on them.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clusterSecret, type ClusterNode } from '../cluster/cluster-harness.js';
import { cliPath, freePort, hermeticEnv } from '../e2e/process-harness.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * Production Raft timing (100 ms ticks, elections after 1–2 s): on two shared cores the tests' fast
 * ticks let a busy moment pass for a dead leader, and this suite counts elections.
 */
export const productionRaftEnv: Readonly<Record<string, string>> = {
  FASTPACA_RAFT_TICK_MS: '100',
  FASTPACA_RAFT_ELECTION_TICKS: '10',
  FASTPACA_RAFT_HEARTBEAT_TICKS: '1',
  FASTPACA_RAFT_PROPOSAL_TIMEOUT_MS: '3000',
};

export interface NodeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface FaultNode extends ClusterNode {
  /** The env of the next start: the test may change it between runs (e.g. a fault hook). */
  readonly env: Record<string, string>;
  stopped(): boolean;
  /** The last exit, once the process has exited. */
  lastExit(): NodeExit | undefined;
  /** Resolves when the current process exits (at once if none runs). */
  exited(): Promise<NodeExit | undefined>;
  sigstop(): void;
  sigcont(): void;
  /** SIGTERM, then waits (bounded) for the exit. */
  terminate(timeoutMs?: number): Promise<NodeExit | undefined>;
  /** Resident set size now, from /proc/<pid>/status (0 when not running). */
  rssBytes(): number;
}

export interface FaultCluster {
  readonly root: string;
  readonly nodes: readonly FaultNode[];
  /** proxy(i, j): what node i dials to reach node j (indices into nodes). */
  proxy(from: number, to: number): TcpProxy;
  /** Cuts every link of node i, both ways. */
  isolate(i: number): void;
  /** Node i's messages to every other node are lost; theirs to it still arrive. */
  muteOutbound(i: number): void;
  /** Every other node's messages to node i are lost; node i's still arrive. */
  muteInbound(i: number): void;
  /** Every link passes again. */
  heal(): void;
  /** A proxy in front of node i's HTTP port, for client traffic. */
  clientProxy(i: number): Promise<TcpProxy>;
  /** Kills every process by pid, closes the proxies, removes the data directories. */
  destroy(): Promise<void>;
}

const children = new Set<ChildProcess>();

const killChild = (child: ChildProcess): void => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGCONT');
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
};

/** SIGCONT then SIGKILL, by pid, to every process this module started that still runs. */
export const stopAll = (): void => {
  for (const child of children) killChild(child);
  children.clear();
};

const withTimeout = <T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

export const readRssBytes = (pid: number | undefined): number => {
  if (pid === undefined) return 0;
  try {
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
};

const faultNode = (
  name: string,
  port: number,
  raftPort: number,
  dataDir: string,
  env: Record<string, string>,
): FaultNode => {
  let child: ChildProcess | undefined;
  let exit: NodeExit | undefined;
  let exitedPromise: Promise<NodeExit | undefined> = Promise.resolve(undefined);
  let isStopped = false;
  let output = '';
  const record = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals): void => {
    const pid = child?.pid;
    if (alive() && pid !== undefined) process.kill(pid, sig);
  };
  const node: FaultNode = {
    name,
    port,
    raftPort,
    base: `http://127.0.0.1:${port}`,
    dataDir,
    env,
    pid: () => child?.pid,
    alive,
    output: () => output,
    stopped: () => isStopped,
    lastExit: () => exit,
    exited: () => exitedPromise,
    start: () => {
      if (alive()) throw new Error(`${name} is already running`);
      const args = [cliPath, 'serve', '--host', '127.0.0.1', '--port', String(port)];
      args.push('--raft-port', String(raftPort), '--data-dir', dataDir);
      const spawned = spawn(process.execPath, args, {
        env: hermeticEnv({ FASTPACA_TOKENIZER_WORKERS: '1', ...env }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(spawned);
      exit = undefined;
      isStopped = false;
      spawned.stdout?.on('data', record);
      spawned.stderr?.on('data', record);
      exitedPromise = new Promise((resolve) => {
        spawned.once('exit', (code, sig) => {
          children.delete(spawned);
          exit = { code, signal: sig };
          resolve(exit);
        });
      });
      child = spawned;
    },
    kill: async () => {
      const pid = child?.pid;
      if (!alive() || pid === undefined) return;
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
      isStopped = false;
      await withTimeout(exitedPromise, 10_000, `${name} (pid ${pid}) did not exit after SIGKILL`);
    },
    sigstop: () => {
      signal('SIGSTOP');
      isStopped = true;
    },
    sigcont: () => {
      signal('SIGCONT');
      isStopped = false;
    },
    terminate: async (timeoutMs = 15_000) => {
      const pid = child?.pid;
      if (!alive() || pid === undefined) return exit;
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
      return withTimeout(exitedPromise, timeoutMs, `${name} (pid ${pid}) did not exit after SIGTERM`);
    },
    rssBytes: () => (alive() ? readRssBytes(child?.pid) : 0),
  };
  return node;
};

/** `size` nodes with one seed and secret, a proxy on every ordered pair (unless not `proxied`); none started yet. */
export const createFaultCluster = async (
  size = 3,
  env: Readonly<Record<string, string>> = productionRaftEnv,
  /**
   * Whether the nodes dial each other through the proxies. A test that loads this process heavily
   * (the overload flood) runs without: proxies in a busy process would delay Raft traffic themselves.
   */
  proxied = true,
): Promise<FaultCluster> => {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
  const root = mkdtempSync(join(tmpdir(), 'fastpaca-fault-'));
  const names = Array.from({ length: size }, (_, i) => `node-${i + 1}`);
  const ports: { port: number; raftPort: number }[] = [];
  for (let i = 0; i < size; i += 1) ports.push({ port: await freePort(), raftPort: await freePort() });
  const proxies = new Map<string, TcpProxy>();
  const key = (from: number, to: number): string => `${from}->${to}`;
  for (let from = 0; from < size; from += 1) {
    for (let to = 0; to < size; to += 1) {
      if (from === to) continue;
      const target = ports[to];
      if (target === undefined) throw new Error('no port');
      proxies.set(
        key(from, to),
        await startTcpProxy({
          name: `${names[from]}->${names[to]}`,
          listenPort: await freePort(),
          targetPort: target.raftPort,
        }),
      );
    }
  }
  const proxy = (from: number, to: number): TcpProxy => {
    const found = proxies.get(key(from, to));
    if (found === undefined) throw new Error(`no proxy ${from} -> ${to}`);
    return found;
  };
  const seed = ports.map(({ port }) => `127.0.0.1:${port}`).join(',');
  const nodes = ports.map(({ port, raftPort }, i) => {
    const overrides = names
      .map((peer, j) => (j === i ? undefined : `${peer}=127.0.0.1:${proxy(i, j).port}`))
      .filter((entry) => entry !== undefined)
      .join(',');
    return faultNode(names[i] ?? '', port, raftPort, join(root, names[i] ?? ''), {
      ...env,
      FASTPACA_CLUSTER_SEED: seed,
      FASTPACA_CLUSTER_SECRET: clusterSecret,
      FASTPACA_NODE_NAME: names[i] ?? '',
      ...(proxied ? { FASTPACA_FAULT_PEER_ADDRESSES: overrides } : {}),
    });
  });
  const others = (i: number): number[] => nodes.map((_, j) => j).filter((j) => j !== i);
  const clientProxies: TcpProxy[] = [];
  return {
    root,
    nodes,
    proxy,
    isolate: (i) => {
      for (const j of others(i)) {
        proxy(i, j).cut();
        proxy(j, i).cut();
      }
    },
    muteOutbound: (i) => {
      for (const j of others(i)) {
        // What i sends on the links it dials, and what it answers on the links others dial.
        proxy(i, j).cutOneWay('up');
        proxy(j, i).cutOneWay('down');
      }
    },
    muteInbound: (i) => {
      for (const j of others(i)) {
        proxy(j, i).cutOneWay('up');
        proxy(i, j).cutOneWay('down');
      }
    },
    heal: () => {
      for (const p of proxies.values()) p.pass();
    },
    clientProxy: async (i) => {
      const target = nodes[i];
      if (target === undefined) throw new Error(`no node ${i}`);
      const p = await startTcpProxy({
        name: `client->${target.name}`,
        listenPort: await freePort(),
        targetPort: target.port,
      });
      clientProxies.push(p);
      return p;
    },
    destroy: async () => {
      await Promise.all(nodes.map((node) => node.kill()));
      await Promise.all([...proxies.values(), ...clientProxies].map((p) => p.close()));
      rmSync(root, { recursive: true, force: true });
    },
  };
};
