// Calls to a peer's internal HTTP endpoints (/internal/v1/cluster/...), in one place: the cluster
// secret travels in its header, and when the nodes have TLS the call is HTTPS, presenting this node's
// certificate and trusting only servers the cluster CA signed (so the secret never crosses the
// network in clear text).

import type * as UndiciModule from 'undici';

import type { PeerTls } from '../../../net/grpc.js';
import { clusterSecretHeader } from './internal-protocol.js';

/** How this node proves itself to peers, and reaches them. */
export interface PeerAuth {
  readonly clusterSecret: string | undefined;
  /** HTTPS with the cluster CA when set; plain HTTP otherwise. */
  readonly tls?: PeerTls | undefined;
}

export interface PeerAnswer {
  readonly status: number;
  readonly text: string;
}

// undici (about a hundred modules) is loaded at the first peer call, not at start-up: a node alone
// never makes one, and a cold start should not wait for it.
type Undici = typeof UndiciModule;
let undiciLoading: Promise<Undici> | undefined;
const loadUndici = (): Promise<Undici> => (undiciLoading ??= import('undici'));

/** One connection pool per TLS identity, for the life of the process. */
const agents = new WeakMap<PeerTls, UndiciModule.Agent>();

const agentFor = (undici: Undici, tls: PeerTls): UndiciModule.Agent => {
  let agent = agents.get(tls);
  if (agent === undefined) {
    agent = new undici.Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key } });
    agents.set(tls, agent);
  }
  return agent;
};

/** `GET` (or `POST`) `pathAndQuery` on the peer whose HTTP listener is `hostPort`. */
export const callPeer = async (
  auth: PeerAuth,
  hostPort: string,
  pathAndQuery: string,
  init: { readonly method?: 'GET' | 'POST'; readonly timeoutMs: number },
): Promise<PeerAnswer> => {
  const headers: Record<string, string> = {};
  if (auth.clusterSecret !== undefined) headers[clusterSecretHeader] = auth.clusterSecret;
  const scheme = auth.tls === undefined ? 'http' : 'https';
  const undici = await loadUndici();
  const response = await undici.fetch(`${scheme}://${hostPort}${pathAndQuery}`, {
    method: init.method ?? 'GET',
    headers,
    signal: AbortSignal.timeout(init.timeoutMs),
    ...(auth.tls === undefined ? {} : { dispatcher: agentFor(undici, auth.tls) }),
  });
  return { status: response.status, text: await response.text() };
};
