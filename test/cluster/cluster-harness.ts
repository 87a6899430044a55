// Real three-node fastpaca clusters for tests: each node is `node dist/src/cli/main.js serve` (built
// by `npm run build`) on 127.0.0.1 with ports found by binding port 0, a temp data directory, the
// chars4 estimator and fast Raft timers. Nodes start without waiting for readiness (a node is only
// ready once its peers are up), can be SIGKILLed and restarted on the same ports and data. Every
// process started here is killed by pid in killAll(), which tests call in afterAll.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { cliPath, freePort, hermeticEnv } from '../e2e/process-harness.js';

export { cliPath, freePort };

export const clusterSecret = 'cluster-test-secret-0123456789';
const secretHeader = 'x-fastpaca-cluster-secret';

/** Raft timing for tests: 50 ms ticks, elections after 0.5–1 s without a leader. */
export const fastRaftEnv: Readonly<Record<string, string>> = {
  FASTPACA_RAFT_TICK_MS: '50',
  FASTPACA_RAFT_ELECTION_TICKS: '10',
  FASTPACA_RAFT_HEARTBEAT_TICKS: '1',
  FASTPACA_RAFT_PROPOSAL_TIMEOUT_MS: '2000',
};

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly raftPort: number;
  readonly base: string;
  readonly dataDir: string;
  pid(): number | undefined;
  alive(): boolean;
  output(): string;
  /** Starts (or restarts) the process; resolves once spawned, not once ready. */
  start(): void;
  /** SIGKILL, then waits (bounded) for the exit. */
  kill(): Promise<void>;
}

export interface GroupView {
  readonly group: number;
  readonly voters: readonly string[];
  readonly learners?: readonly string[];
  readonly leader: string | null;
  readonly term: number;
}

export interface StatusView {
  readonly node_id: string;
  readonly joined: boolean;
  readonly members: readonly {
    readonly node_id: string;
    readonly raft_address: string;
    readonly http_address?: string;
    readonly state?: string;
  }[];
  readonly groups: readonly GroupView[];
  readonly meta?: GroupView;
}

const children = new Set<ChildProcess>();

// One node of the cluster runs with one tokenizer worker: three nodes share two cores in CI.
const nodeEnv = (extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv =>
  hermeticEnv({ FASTPACA_TOKENIZER_WORKERS: '1', ...extra });

export interface TestCluster {
  readonly root: string;
  readonly nodes: readonly ClusterNode[];
  /** A further node (not started) with the same seed and secret: the seed does not name it. */
  addNode(name: string): Promise<ClusterNode>;
  /** Kills every process and removes the data directories. */
  destroy(): Promise<void>;
}

/** Three nodes sharing one seed; none started yet. */
export const createCluster = async (
  size = 3,
  env: Readonly<Record<string, string>> = fastRaftEnv,
): Promise<TestCluster> => {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run \`npm run build\` first`);
  const root = mkdtempSync(join(tmpdir(), 'fastpaca-cluster-'));
  const ports: { port: number; raftPort: number }[] = [];
  for (let i = 0; i < size; i += 1) ports.push({ port: await freePort(), raftPort: await freePort() });
  const seed = ports.map(({ port }) => `127.0.0.1:${port}`).join(',');
  const nodes = ports.map(({ port, raftPort }, i) =>
    clusterNode(`node-${i + 1}`, port, raftPort, join(root, `node-${i + 1}`), {
      ...env,
      FASTPACA_CLUSTER_SEED: seed,
      FASTPACA_CLUSTER_SECRET: clusterSecret,
      FASTPACA_NODE_NAME: `node-${i + 1}`,
    }),
  );
  const extra: ClusterNode[] = [];
  return {
    root,
    nodes,
    addNode: async (name) => {
      const node = clusterNode(name, await freePort(), await freePort(), join(root, name), {
        ...env,
        FASTPACA_CLUSTER_SEED: seed,
        FASTPACA_CLUSTER_SECRET: clusterSecret,
        FASTPACA_NODE_NAME: name,
      });
      extra.push(node);
      return node;
    },
    destroy: async () => {
      await Promise.all([...nodes, ...extra].map((node) => node.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
};

const clusterNode = (
  name: string,
  port: number,
  raftPort: number,
  dataDir: string,
  env: Readonly<Record<string, string>>,
): ClusterNode => {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  const record = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-64 * 1024);
  };
  const alive = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    name,
    port,
    raftPort,
    base: `http://127.0.0.1:${port}`,
    dataDir,
    pid: () => child?.pid,
    alive,
    output: () => output,
    start: () => {
      if (alive()) throw new Error(`${name} is already running`);
      const args = [cliPath, 'serve', '--host', '127.0.0.1', '--port', String(port)];
      args.push('--raft-port', String(raftPort), '--data-dir', dataDir);
      const spawned = spawn(process.execPath, args, {
        env: nodeEnv(env),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(spawned);
      spawned.stdout?.on('data', record);
      spawned.stderr?.on('data', record);
      exited = new Promise((resolve) => {
        spawned.once('exit', () => {
          children.delete(spawned);
          resolve();
        });
      });
      child = spawned;
    },
    kill: async () => {
      const pid = child?.pid;
      if (!alive() || pid === undefined) return;
      process.kill(pid, 'SIGKILL');
      await withTimeout(exited, 10_000, `${name} (pid ${pid}) did not exit after SIGKILL`);
    },
  };
};

/** SIGKILLs every process this module started that is still running, by pid. */
export const killAll = (): void => {
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

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The part of a node's (rolling) output written after `before` was read. */
export const outputSince = (before: string, after: string): string => {
  const anchor = before.slice(-400);
  const at = anchor.length === 0 ? -1 : after.lastIndexOf(anchor);
  return at < 0 ? after : after.slice(at + anchor.length);
};

const withTimeout = <T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
};

/** Polls `check` every 50 ms until it returns true; throws after timeoutMs with `what`. */
export const eventually = async (
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await check();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
};

export const isReady = async (node: ClusterNode): Promise<boolean> => {
  const response = await fetch(`${node.base}/health/ready`, { signal: AbortSignal.timeout(1_000) });
  await response.arrayBuffer();
  return response.status === 200;
};

/** Runs `work`; a failure carries the nodes' recent output (what they logged around it). */
export const withNodeLogs = async <T>(nodes: readonly ClusterNode[], work: () => Promise<T>): Promise<T> => {
  try {
    return await work();
  } catch (error) {
    const logs = nodes.map((node) => `--- ${node.name}:\n${node.output().slice(-4_000)}`).join('\n');
    throw new Error(`${(error as Error).message}\n${logs}`, { cause: error });
  }
};

export const waitReady = async (nodes: readonly ClusterNode[], timeoutMs: number): Promise<void> => {
  await withNodeLogs(nodes, () =>
    Promise.all(nodes.map((node) => eventually(`${node.name} ready`, timeoutMs, () => isReady(node)))),
  );
};

export const clusterStatus = async (node: ClusterNode): Promise<StatusView> => {
  const response = await fetch(`${node.base}/internal/v1/cluster/status`, {
    headers: { [secretHeader]: clusterSecret },
    signal: AbortSignal.timeout(2_000),
  });
  if (response.status !== 200) throw new Error(`status of ${node.name}: HTTP ${response.status}`);
  return (await response.json()) as StatusView;
};

/** Groups led per node, as `node` sees them. */
export const leaderCounts = (status: StatusView): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const group of status.groups) {
    if (group.leader !== null) counts.set(group.leader, (counts.get(group.leader) ?? 0) + 1);
  }
  return counts;
};

/**
 * Waits until every node names the same leader for every group and leadership is spread within
 * ±10 % of even: the leader balancer has finished its transfers, so a status read now sees a steady
 * cluster rather than a group between two leaders.
 */
export const waitLeadersSettled = async (nodes: readonly ClusterNode[], timeoutMs: number): Promise<void> => {
  await eventually('leaders agreed and balanced', timeoutMs, async () => {
    const statuses = await Promise.all(nodes.map((node) => clusterStatus(node)));
    const first = statuses[0];
    if (first === undefined || first.groups.length === 0) return false;
    for (const status of statuses) {
      for (const [index, group] of status.groups.entries()) {
        if (group.leader === null || group.leader !== first.groups[index]?.leader) return false;
      }
    }
    const even = first.groups.length / nodes.length;
    const counts = leaderCounts(first);
    return nodes.every((node) => Math.abs((counts.get(node.name) ?? 0) - even) <= even * 0.1);
  });
};

export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** JSON request with a bounded wait; a network failure is status 0. */
export const call = async (
  node: ClusterNode,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<HttpAnswer> => {
  try {
    const response = await fetch(`${node.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
  } catch {
    return { status: 0, body: undefined };
  }
};

export interface StoredMessage {
  readonly id: string;
  readonly seq: number;
}

/** The whole message history of a context as `node` has it (export, paged). */
export const exportMessages = async (node: ClusterNode, contextId: string): Promise<StoredMessage[]> => {
  const messages: StoredMessage[] = [];
  let fromSeq = 0;
  for (let page = 0; page < 1_000; page += 1) {
    const answer = await call(
      node,
      'GET',
      `/v1/contexts/${contextId}/messages?from_seq=${fromSeq}&limit=1000`,
    );
    if (answer.status !== 200)
      throw new Error(`export of ${contextId} on ${node.name}: HTTP ${answer.status}`);
    const body = answer.body as { messages: StoredMessage[]; next_from_seq?: number };
    messages.push(...body.messages.map(({ id, seq }) => ({ id, seq })));
    if (body.next_from_seq === undefined) return messages;
    fromSeq = body.next_from_seq;
  }
  throw new Error('export did not end');
};

export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });

/** Creates each context through the nodes in turn (a write through every node); each must answer 201. */
export const createContexts = async (
  nodes: readonly ClusterNode[],
  contextIds: readonly string[],
): Promise<void> => {
  for (const [i, id] of contextIds.entries()) {
    const node = nodes[i % nodes.length];
    if (node === undefined) throw new Error('no node to create contexts through');
    const created = await call(node, 'PUT', `/v1/contexts/${id}`, { token_budget: 1_000_000 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
};

/** Message ids a test's writers sent and those the cluster acknowledged, per context. */
export interface AppendLedger {
  readonly sent: ReadonlyMap<string, ReadonlySet<string>>;
  readonly acked: ReadonlyMap<string, ReadonlySet<string>>;
}

/**
 * The cluster kept every promise: per context, all `nodes` converge on one history (bounded wait),
 * whose seqs are contiguous from 1, whose ids are unique and were all sent, and which holds every
 * acknowledged id.
 */
export const expectNoAppendLostOrDuplicated = async (
  nodes: readonly ClusterNode[],
  contextIds: readonly string[],
  ledger: AppendLedger,
): Promise<void> => {
  for (const contextId of contextIds) {
    const acked = ledger.acked.get(contextId) ?? new Set<string>();
    const sent = ledger.sent.get(contextId) ?? new Set<string>();
    await eventually(`${contextId} identical on every node`, 15_000, async () => {
      const histories = await Promise.all(nodes.map((node) => exportMessages(node, contextId)));
      return histories.every((history) => JSON.stringify(history) === JSON.stringify(histories[0]));
    });
    for (const node of nodes) {
      const history = await exportMessages(node, contextId);
      expect(history.map((message) => message.seq)).toEqual(history.map((_, i) => i + 1));
      const ids = history.map((message) => message.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of ids) expect(sent.has(id), `${id} was never sent`).toBe(true);
      const present = new Set(ids);
      for (const id of acked)
        expect(present.has(id), `acknowledged ${id} missing on ${node.name}`).toBe(true);
    }
  }
};

export interface BinaryRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the built `fastpaca` binary, killed by pid if it overruns `timeoutMs`. With `env`, the child
 * sees only PATH and those variables; without, it inherits this process's environment.
 */
export const runFastpaca = (
  args: readonly string[],
  timeoutMs: number,
  env?: Readonly<Record<string, string>>,
): Promise<BinaryRun> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      ...(env === undefined ? {} : { env: { PATH: process.env['PATH'] ?? '', ...env } }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(
        new Error(`fastpaca ${args.join(' ')} did not exit within ${timeoutMs} ms:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });

/** `fastpaca cluster remove <name>` asked of `via`, allowed a minute to drain (polled every 300 ms). */
export const drainNode = (name: string, via: ClusterNode): Promise<BinaryRun> =>
  runFastpaca(
    [
      'cluster',
      'remove',
      name,
      '--url',
      via.base,
      '--cluster-secret',
      clusterSecret,
      '--timeout',
      '60000',
      '--poll',
      '300',
    ],
    75_000,
  );
