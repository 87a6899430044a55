// Finding the cluster's members from the seed: every seed entry is resolved to all of its
// addresses (so one DNS name resolving to every node is a complete seed), and each address is asked
// who it is through the internal hello endpoint. A peer's Raft address is the address it was
// reached at plus the Raft port it reports, since a node listening on 0.0.0.0 cannot know which of
// its addresses its peers can reach.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import type { NodeId } from '../../../raft/index.js';
import type { SeedPeer } from '../../config/cluster-seed.js';
import type { MemberView } from './internal-protocol.js';
import { helloPath, joinPath, parseHello } from './internal-protocol.js';
import { callPeer } from './peer-http.js';
import type { PeerAnswer, PeerAuth } from './peer-http.js';

export interface Member {
  readonly nodeId: NodeId;
  /** The address it was reached at. */
  readonly host: string;
  readonly httpPort: number;
  readonly raftPort: number;
  /** It belongs to a formed cluster (absent: it did not say, as before joining). */
  readonly joined?: boolean;
  /** The member list it knows. */
  readonly knownMembers?: readonly MemberView[];
  /** The ids it bootstrapped the cluster with, if it did in its current run. */
  readonly formedWith?: readonly NodeId[];
  /** Before it joined: every node id it knows, itself included. */
  readonly known?: readonly NodeId[];
}

export interface ProbeResult {
  readonly members: readonly Member[];
  /** One line per seed address that did not answer usefully, for the operator. */
  readonly problems: readonly string[];
}

export interface ProbeOptions extends PeerAuth {
  readonly seed: readonly SeedPeer[];
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
const hello = async (host: string, port: number, auth: PeerAuth, timeoutMs: number): Promise<Member> => {
  const response = await callPeer(auth, joinHostPort(host, port), helloPath, { timeoutMs });
  const text = response.text;
  if (response.status === 401)
    throw new Error('refused our cluster secret (FASTPACA_CLUSTER_SECRET differs)');
  if (response.status === 404) throw new Error('is not a fastpaca cluster node (no hello endpoint)');
  if (response.status !== 200) throw new Error(`answered hello with HTTP ${response.status}`);
  const answer = parseHello(text);
  return {
    nodeId: answer.nodeId,
    host,
    httpPort: port,
    raftPort: answer.raftPort,
    joined: answer.joined,
    knownMembers: answer.members,
    ...(answer.formedWith === undefined ? {} : { formedWith: answer.formedWith }),
    ...(answer.known === undefined ? {} : { known: answer.known }),
  };
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
            members.push(await hello(address, entry.port, options, options.timeoutMs));
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

export interface JoinRequest extends PeerAuth {
  /** The member asked (any node of the formed cluster; it forwards to the membership leader). */
  readonly via: { readonly host: string; readonly httpPort: number };
  readonly nodeId: NodeId;
  /** This node's data directory incarnation (config/node-name.ts). */
  readonly incarnation: string;
  readonly httpPort: number;
  readonly raftPort: number;
  /** This node's address as the seed names it; absent: the asked node uses the request's source. */
  readonly host: string | undefined;
  readonly timeoutMs: number;
}

/** Asks a member to add this node to the member list. Throws with a readable reason on failure. */
export const requestJoin = async (request: JoinRequest): Promise<void> => {
  const query = new URLSearchParams({
    node_id: request.nodeId,
    http_port: String(request.httpPort),
    raft_port: String(request.raftPort),
    incarnation: request.incarnation,
  });
  if (request.host !== undefined) query.set('host', request.host);
  const via = joinHostPort(request.via.host, request.via.httpPort);
  let response: PeerAnswer;
  try {
    response = await callPeer(request, via, `${joinPath}?${query.toString()}`, {
      method: 'POST',
      timeoutMs: request.timeoutMs,
    });
  } catch (error) {
    throw new Error(`join via ${via}: ${describe(error)}`);
  }
  const text = response.text;
  if (response.status !== 200) {
    throw new Error(
      `join via ${joinHostPort(request.via.host, request.via.httpPort)}: HTTP ${response.status} ${text.slice(0, 600)}`,
    );
  }
};
