// Finding the cluster's members from the seed: every seed entry is resolved to all of its
// addresses (so one DNS name resolving to every node is a complete seed), and each address is asked
// who it is through the internal hello endpoint. A peer's Raft address is the address it was
// reached at plus the Raft port it reports, since a node listening on 0.0.0.0 cannot know which of
// its addresses its peers can reach.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import type { NodeId } from '../../raft/core/types.js';
import type { SeedPeer } from '../config/cluster-seed.js';
import { clusterSecretHeader, helloPath, parseHello } from './internal-protocol.js';

export interface Member {
  readonly nodeId: NodeId;
  /** The address it was reached at. */
  readonly host: string;
  readonly httpPort: number;
  readonly raftPort: number;
}

export interface ProbeResult {
  readonly members: readonly Member[];
  /** One line per seed address that did not answer usefully, for the operator. */
  readonly problems: readonly string[];
}

export interface ProbeOptions {
  readonly seed: readonly SeedPeer[];
  readonly clusterSecret: string | undefined;
  readonly timeoutMs: number;
  /** All addresses of a host name. Default: the system resolver. */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
}

/** `host:port`, bracketing IPv6 literals. */
export const joinHostPort = (host: string, port: number): string =>
  isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;

const systemResolve = async (host: string): Promise<readonly string[]> => {
  if (isIP(host) !== 0) return [host];
  const addresses = await lookup(host, { all: true });
  return [...new Set(addresses.map((entry) => entry.address))];
};

const describe = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as Error & { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
};

/** Asks one address who it is. Throws with a readable reason when it cannot tell. */
const hello = async (
  host: string,
  port: number,
  clusterSecret: string | undefined,
  timeoutMs: number,
): Promise<Member> => {
  const headers: Record<string, string> = {};
  if (clusterSecret !== undefined) headers[clusterSecretHeader] = clusterSecret;
  const response = await fetch(`http://${joinHostPort(host, port)}${helloPath}`, {
    headers,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (response.status === 401)
    throw new Error('refused our cluster secret (FASTPACA_CLUSTER_SECRET differs)');
  if (response.status === 404) throw new Error('is not a fastpaca cluster node (no hello endpoint)');
  if (response.status !== 200) throw new Error(`answered hello with HTTP ${response.status}`);
  const answer = parseHello(text);
  return { nodeId: answer.nodeId, host, httpPort: port, raftPort: answer.raftPort };
};

/** One round over the whole seed, all addresses in parallel. */
export const probeSeed = async (options: ProbeOptions): Promise<ProbeResult> => {
  const resolve = options.resolve ?? systemResolve;
  const members: Member[] = [];
  const problems: string[] = [];
  await Promise.all(
    options.seed.map(async (entry) => {
      let addresses: readonly string[];
      try {
        addresses = await resolve(entry.host);
      } catch (error) {
        problems.push(`${joinHostPort(entry.host, entry.port)}: cannot resolve: ${describe(error)}`);
        return;
      }
      if (addresses.length === 0) problems.push(`${entry.host}: resolves to no address`);
      await Promise.all(
        addresses.map(async (address) => {
          try {
            members.push(await hello(address, entry.port, options.clusterSecret, options.timeoutMs));
          } catch (error) {
            const via = address === entry.host ? '' : ` (${entry.host})`;
            problems.push(`${joinHostPort(address, entry.port)}${via}: ${describe(error)}`);
          }
        }),
      );
    }),
  );
  return { members, problems };
};
