// Command-line options of the raft process (main.ts). Every value is validated here, so a typo stops
// the process with a message naming the option instead of starting a node that behaves oddly.
//   --id a --data-dir DIR --members a,b,c [--peers b=127.0.0.1:7001,c=127.0.0.1:7002]
//   [--raft-port 0] [--http-port 0] [--groups 256] [--secret S | env FASTPACA_CLUSTER_SECRET]
//   [--tick-ms 100] [--election-ticks 10] [--heartbeat-ticks 1] [--log-retain 2000]
//   [--reconnect-initial-ms 100] [--reconnect-max-ms 5000]

import { parseArgs } from 'node:util';
import type { NodeId } from '../../raft/index.js';
import { defaultLimits } from './raft-node.js';
import type { RaftNodeOptions } from './raft-node.js';

export interface ProcessOptions {
  readonly node: Omit<RaftNodeOptions, 'onFatal'>;
  readonly httpPort: number;
}

const integer = (
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number => {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`--${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
};

const parsePeers = (raw: string | undefined): Map<NodeId, string> => {
  const peers = new Map<NodeId, string>();
  if (raw === undefined || raw === '') return peers;
  for (const item of raw.split(',')) {
    const match = /^([^=]+)=(.+:\d+)$/.exec(item);
    if (match === null) throw new Error(`--peers: expected id=host:port, got ${JSON.stringify(item)}`);
    peers.set(match[1] as string, match[2] as string);
  }
  return peers;
};

export const parseProcessArgs = (argv: readonly string[], env: NodeJS.ProcessEnv): ProcessOptions => {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      id: { type: 'string' },
      'data-dir': { type: 'string' },
      members: { type: 'string' },
      peers: { type: 'string' },
      'raft-port': { type: 'string' },
      'http-port': { type: 'string' },
      groups: { type: 'string' },
      secret: { type: 'string' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
      'heartbeat-ticks': { type: 'string' },
      'log-retain': { type: 'string' },
      'reconnect-initial-ms': { type: 'string' },
      'reconnect-max-ms': { type: 'string' },
    },
  });
  const nodeId = values.id;
  const dataDir = values['data-dir'];
  if (nodeId === undefined || nodeId === '') throw new Error('--id is required');
  if (dataDir === undefined || dataDir === '') throw new Error('--data-dir is required');
  const members = (values.members ?? nodeId).split(',').filter((member) => member !== '');
  if (!members.includes(nodeId)) throw new Error(`--members must include this node's id ${nodeId}`);
  const clusterSecret = values.secret ?? env.FASTPACA_CLUSTER_SECRET;
  if (clusterSecret === undefined || clusterSecret === '') {
    throw new Error('a cluster secret is required (--secret or FASTPACA_CLUSTER_SECRET)');
  }
  const reconnectInitial = integer('reconnect-initial-ms', values['reconnect-initial-ms'], 100, 1, 60_000);
  return {
    httpPort: integer('http-port', values['http-port'], 0, 0, 65_535),
    node: {
      nodeId,
      dataDir,
      members,
      peers: parsePeers(values.peers),
      raftPort: integer('raft-port', values['raft-port'], 0, 0, 65_535),
      clusterSecret,
      groups: integer('groups', values.groups, 256, 1, 65_536),
      tickMs: integer('tick-ms', values['tick-ms'], 100, 1, 10_000),
      electionTicks: integer('election-ticks', values['election-ticks'], 10, 2, 1_000),
      heartbeatTicks: integer('heartbeat-ticks', values['heartbeat-ticks'], 1, 1, 500),
      reconnectBackoffMs: {
        initial: reconnectInitial,
        max: integer('reconnect-max-ms', values['reconnect-max-ms'], 5_000, reconnectInitial, 600_000),
      },
      limits: {
        ...defaultLimits,
        logRetainEntries: integer('log-retain', values['log-retain'], defaultLimits.logRetainEntries, 1, 1e8),
      },
    },
  };
};
