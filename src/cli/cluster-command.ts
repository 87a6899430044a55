// `fastpaca cluster status`: asks one running node for its view of the cluster (the internal
// GET /internal/v1/cluster/status endpoint, authenticated by the cluster secret) and prints who
// the members are, how group leadership is spread over them, and how far this node's state
// machines trail its commit index. --json prints the endpoint's answer unchanged, for scripts.
// `fastpaca cluster remove <node>` (cluster-remove.ts) drains a node before it is switched off.
import type { Argv } from 'yargs';
import { clusterSecretHeader, statusPath } from '../cluster/membership/internal-protocol.js';
import { clusterRemove } from './cluster-remove.js';
import { exitCodes } from './exit-codes.js';

export interface ClusterCommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface StatusGroup {
  readonly group: number;
  readonly voters: readonly string[];
  readonly leader: string | null;
  readonly commit?: number;
  readonly applied?: number;
}

interface StatusAnswer {
  readonly node_id: string;
  readonly joined: boolean;
  readonly members: readonly {
    readonly node_id: string;
    readonly raft_address: string;
    readonly http_address?: string;
    readonly state?: string;
  }[];
  readonly groups: readonly StatusGroup[];
}

export const defaultStatusUrl = 'http://127.0.0.1:4000';
const secretEnv = 'FASTPACA_CLUSTER_SECRET';

/** Registers `cluster status`; `setWork` receives the command's work, as runCli expects. */
export const clusterCommand = <T>(
  command: Argv<T>,
  io: ClusterCommandIo,
  setWork: (work: () => Promise<number>) => void,
): Argv<T> =>
  command
    .usage('$0 cluster <status|remove> [options]')
    .command(
      'status',
      "Print a running node's view of the cluster: members, group leaders per node, voters and apply lag",
      (sub) =>
        sub
          .option('url', {
            type: 'string',
            default: defaultStatusUrl,
            describe: "The node's HTTP address",
          })
          .option('cluster-secret', {
            type: 'string',
            describe: `The cluster secret (default: $${secretEnv})`,
          })
          .option('json', { type: 'boolean', default: false, describe: 'Print the raw status JSON' })
          .option('timeout', {
            type: 'number',
            default: 5_000,
            describe: 'Milliseconds to wait for the node',
          })
          .epilog('Exit codes: 0 success; 1 the node is unreachable or refused; 2 invalid command line.'),
      (argv) => {
        const record = argv as Readonly<Record<string, unknown>>;
        const url = typeof record['url'] === 'string' ? record['url'] : defaultStatusUrl;
        const flagSecret = record['cluster-secret'];
        const secret = typeof flagSecret === 'string' ? flagSecret : io.env[secretEnv];
        const timeout = typeof record['timeout'] === 'number' ? record['timeout'] : 5_000;
        const json = record['json'] === true;
        setWork(() => clusterStatus({ url, secret, timeoutMs: timeout, json }, io));
      },
    )
    .command(
      'remove <node>',
      'Drain a node before switching it off: mark it leaving, wait until its replicas have moved to the other nodes, then drop it from the member list',
      (sub) =>
        sub
          .positional('node', { type: 'string', demandOption: true, describe: 'The node id to remove' })
          .option('url', {
            type: 'string',
            default: defaultStatusUrl,
            describe: "Any cluster node's HTTP address",
          })
          .option('cluster-secret', {
            type: 'string',
            describe: `The cluster secret (default: $${secretEnv})`,
          })
          .option('timeout', {
            type: 'number',
            default: 600_000,
            describe: 'Milliseconds to wait for the replicas to move',
          })
          .option('poll', {
            type: 'number',
            default: 1_000,
            describe: 'Milliseconds between progress checks',
          })
          .epilog(
            'Exit codes: 0 the node hosts no replicas any more; 1 refused, unreachable or timed out; 2 invalid command line.',
          ),
      (argv) => {
        const record = argv as Readonly<Record<string, unknown>>;
        const node = typeof record['node'] === 'string' ? record['node'] : '';
        const url = typeof record['url'] === 'string' ? record['url'] : defaultStatusUrl;
        const flagSecret = record['cluster-secret'];
        const secret = typeof flagSecret === 'string' ? flagSecret : io.env[secretEnv];
        const timeoutMs = typeof record['timeout'] === 'number' ? record['timeout'] : 600_000;
        const pollMs = typeof record['poll'] === 'number' ? record['poll'] : 1_000;
        setWork(() => clusterRemove({ url, node, secret, timeoutMs, pollMs }, io));
      },
    )
    .demandCommand(1, 'Give a cluster command: status or remove.');

interface StatusOptions {
  readonly url: string;
  readonly secret: string | undefined;
  readonly timeoutMs: number;
  readonly json: boolean;
}

export const clusterStatus = async (options: StatusOptions, io: ClusterCommandIo): Promise<number> => {
  let target: URL;
  try {
    target = new URL(statusPath, options.url);
  } catch {
    io.stderr(`fastpaca: --url ${options.url} is not a URL (for example ${defaultStatusUrl})\n`);
    return exitCodes.usage;
  }
  let status: number;
  let text: string;
  try {
    const response = await fetch(target, {
      headers: options.secret === undefined ? {} : { [clusterSecretHeader]: options.secret },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    status = response.status;
    text = await response.text();
  } catch (error) {
    const cause = error instanceof Error ? describeFetchError(error) : String(error);
    io.stderr(`fastpaca: cannot reach ${options.url}: ${cause}\n`);
    return exitCodes.failure;
  }
  if (status !== 200) {
    io.stderr(`fastpaca: ${options.url} answered HTTP ${status}: ${explainStatus(status)}\n`);
    return exitCodes.failure;
  }
  let answer: StatusAnswer;
  try {
    answer = parseStatus(text);
  } catch (error) {
    io.stderr(`fastpaca: ${options.url} sent an unexpected status: ${(error as Error).message}\n`);
    return exitCodes.failure;
  }
  io.stdout(options.json ? `${text.trimEnd()}\n` : renderStatus(answer, options.url));
  return exitCodes.ok;
};

const explainStatus = (status: number): string => {
  if (status === 401 || status === 403) {
    return `the cluster secret is missing or wrong (give --cluster-secret or set ${secretEnv})`;
  }
  if (status === 404) return 'no cluster status here; is the node running with a cluster seed?';
  return 'the node could not answer';
};

/** fetch hides the socket error (ECONNREFUSED, timeout) in `cause`; that is what an operator needs. */
const describeFetchError = (error: Error): string => {
  if (error.name === 'TimeoutError') return 'no answer in time';
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} (${cause.message})` : cause.message;
  }
  return error.message;
};

const parseStatus = (text: string): StatusAnswer => {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new Error('not a JSON object');
  const record = value as Record<string, unknown>;
  if (typeof record['node_id'] !== 'string') throw new Error('no node_id');
  if (!Array.isArray(record['groups'])) throw new Error('no groups');
  if (!Array.isArray(record['members'])) throw new Error('no members');
  return value as StatusAnswer;
};

const pad = (text: string, width: number): string => text.padEnd(width);

export const renderStatus = (status: StatusAnswer, url: string): string => {
  const lines: string[] = [];
  lines.push(`Node ${status.node_id} at ${url}: ${status.joined ? 'joined' : 'not joined yet'}`);
  const leaders = new Map<string, number>();
  const voterSets = new Map<string, number>();
  const leaderless: number[] = [];
  let maxLag = 0;
  let maxLagGroup: number | undefined;
  let totalLag = 0;
  let lagKnown = false;
  for (const group of status.groups) {
    if (group.leader === null) leaderless.push(group.group);
    else leaders.set(group.leader, (leaders.get(group.leader) ?? 0) + 1);
    const voters = [...group.voters].sort().join(',');
    voterSets.set(voters, (voterSets.get(voters) ?? 0) + 1);
    if (typeof group.commit === 'number' && typeof group.applied === 'number') {
      lagKnown = true;
      const lag = Math.max(0, group.commit - group.applied);
      totalLag += lag;
      if (lag > maxLag || maxLagGroup === undefined) {
        maxLag = lag;
        maxLagGroup = group.group;
      }
    }
  }
  const ids = new Set<string>([status.node_id, ...status.members.map((m) => m.node_id), ...leaders.keys()]);
  const width = Math.max(8, ...[...ids].map((id) => id.length + 2));
  // The endpoint lists the node's peers; the node itself is a member too.
  const peers = status.members
    .filter((member) => member.node_id !== status.node_id)
    .sort((a, b) => a.node_id.localeCompare(b.node_id));
  lines.push(`Nodes (${peers.length + 1}):`);
  lines.push(`  ${pad(status.node_id, width)}(this node)`);
  for (const member of peers) lines.push(`  ${pad(member.node_id, width)}raft ${member.raft_address}`);
  const listed = status.members.filter((member) => member.state !== undefined);
  if (listed.length > 0) {
    const states = listed.map((member) => `${member.node_id} (${member.state ?? ''})`).join(', ');
    lines.push(`Member list: ${states}`);
  }
  lines.push(
    `Groups: ${status.groups.length} (${status.groups.length - leaderless.length} with a leader, ${leaderless.length} without)`,
  );
  lines.push('Leaders per node:');
  for (const id of [...ids].sort()) lines.push(`  ${pad(id, width)}${leaders.get(id) ?? 0}`);
  if (leaderless.length > 0) {
    const shown = leaderless.slice(0, 20).join(', ');
    lines.push(`Groups without a leader: ${shown}${leaderless.length > 20 ? ', ...' : ''}`);
  }
  lines.push('Voter sets:');
  for (const [voters, count] of [...voterSets].sort((a, b) => b[1] - a[1])) {
    lines.push(`  ${voters === '' ? '(none)' : voters}: ${count} groups`);
  }
  if (lagKnown) {
    lines.push(
      `Apply lag on this node (commit - applied): max ${maxLag} (group ${maxLagGroup ?? '-'}), total ${totalLag}`,
    );
  }
  return `${lines.join('\n')}\n`;
};
