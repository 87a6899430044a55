// Registers the internal cluster endpoints on the HTTP server (through startHttpServer's `extend`).
// Each checks the cluster secret header in constant time (net/auth.ts); API keys play no part here.

import type { TemplatedApp } from 'uWebSockets.js';

import { secretMatches } from '../../../net/auth.js';
import { ServiceError } from '../../api/errors.js';
import type { Gateway } from '../../http/gateway.js';
import { jsonReply } from '../../http/reply.js';
import { incarnationPattern } from '../../config/node-name.js';
import type { MemberAddress } from './membership.js';
import type { AcknowledgedAnswer } from './acknowledged-entries.js';
import { acknowledgedBody } from './acknowledged-entries.js';
import type { ClusterStatus, HelloAnswer } from './internal-protocol.js';
import {
  acknowledgedPath,
  clusterSecretHeader,
  drainingPath,
  forgetPath,
  helloBody,
  helloPath,
  joinPath,
  leavePath,
  nodeIdPattern,
  statusPath,
} from './internal-protocol.js';

export interface InternalRoutesOptions {
  readonly clusterSecret: string | undefined;
  readonly hello: () => HelloAnswer;
  readonly status: () => ClusterStatus;
  /**
   * This node's id, per group it leads what `follower` acknowledged, and the term of every group it
   * holds (acknowledged-entries.ts).
   */
  readonly acknowledged: (follower: string) => AcknowledgedAnswer;
  /** Each resolves once the change is committed in the meta group; a ServiceError otherwise. */
  readonly join: (member: MemberAddress) => Promise<void>;
  readonly leave: (nodeId: string) => Promise<void>;
  readonly forget: (nodeId: string) => Promise<void>;
  /** A peer shuts down for up to ttlMs (0: it is back). */
  readonly draining: (nodeId: string, ttlMs: number) => void;
}

export const registerInternalRoutes = (
  app: TemplatedApp,
  gateway: Gateway,
  options: InternalRoutesOptions,
): void => {
  const unauthorized = new ServiceError('unauthorized', 'The cluster secret is missing or wrong');
  app.get(helloPath, (res, req) => {
    const exchange = gateway.begin(res, `GET ${helloPath}`);
    if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
      exchange.fail(unauthorized);
      return;
    }
    exchange.send({ status: 200, body: helloBody(options.hello()) });
  });
  app.get(statusPath, (res, req) => {
    const exchange = gateway.begin(res, `GET ${statusPath}`);
    if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
      exchange.fail(unauthorized);
      return;
    }
    exchange.send(jsonReply(200, options.status()));
  });

  const invalid = (message: string): ServiceError => new ServiceError('invalid_query', message);
  const nodeIdOf = (query: URLSearchParams): string => {
    const nodeId = query.get('node_id') ?? '';
    if (!nodeIdPattern.test(nodeId)) throw invalid('node_id is missing or not a valid node id');
    return nodeId;
  };
  // Asked once by a starting peer (its stale-copy check); reads the progress of the led groups only.
  app.get(acknowledgedPath, (res, req) => {
    const exchange = gateway.begin(res, `GET ${acknowledgedPath}`);
    if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
      exchange.fail(unauthorized);
      return;
    }
    const query = new URLSearchParams(req.getQuery() ?? '');
    try {
      const answer = options.acknowledged(nodeIdOf(query));
      exchange.send({ status: 200, body: acknowledgedBody(answer) });
    } catch (error) {
      exchange.fail(error);
    }
  });
  const portOf = (query: URLSearchParams, name: string): number => {
    const port = Number(query.get(name));
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw invalid(`${name} is not a port`);
    return port;
  };

  app.post(joinPath, (res, req) => {
    const exchange = gateway.begin(res, `POST ${joinPath}`);
    if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
      exchange.fail(unauthorized);
      return;
    }
    const query = new URLSearchParams(req.getQuery() ?? '');
    // Without an address of its own, the joiner is reached where its request came from: a node
    // listening on 0.0.0.0 cannot know which of its addresses its peers can reach.
    const remote = Buffer.from(res.getRemoteAddressAsText())
      .toString('utf8')
      .replace(/^::ffff:/, '');
    exchange.run(async () => {
      const host = query.get('host') ?? remote;
      if (host.length === 0) throw invalid('no address for the joining node');
      const incarnation = query.get('incarnation');
      if (incarnation !== null && !incarnationPattern.test(incarnation))
        throw invalid('incarnation is not a valid incarnation');
      await options.join({
        nodeId: nodeIdOf(query),
        host,
        httpPort: portOf(query, 'http_port'),
        raftPort: portOf(query, 'raft_port'),
        ...(incarnation === null ? {} : { incarnation }),
      });
      return jsonReply(200, { ok: true });
    }, undefined);
  });
  app.post(drainingPath, (res, req) => {
    const exchange = gateway.begin(res, `POST ${drainingPath}`);
    if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
      exchange.fail(unauthorized);
      return;
    }
    const query = new URLSearchParams(req.getQuery() ?? '');
    try {
      const nodeId = nodeIdOf(query);
      // Number() reads a missing or empty value as 0 (which clears a mark): it must be given.
      const raw = query.get('ttl_ms') ?? '';
      const ttlMs = raw === '' ? Number.NaN : Number(raw);
      if (!Number.isSafeInteger(ttlMs) || ttlMs < 0) throw invalid('ttl_ms is not a non-negative integer');
      options.draining(nodeId, ttlMs);
      exchange.send(jsonReply(200, { ok: true }));
    } catch (error) {
      exchange.fail(error);
    }
  });
  for (const [path, change] of [
    [leavePath, options.leave],
    [forgetPath, options.forget],
  ] as const) {
    app.post(path, (res, req) => {
      const exchange = gateway.begin(res, `POST ${path}`);
      if (!secretMatches(options.clusterSecret, req.getHeader(clusterSecretHeader))) {
        exchange.fail(unauthorized);
        return;
      }
      const query = new URLSearchParams(req.getQuery() ?? '');
      exchange.run(async () => {
        await change(nodeIdOf(query));
        return jsonReply(200, { ok: true });
      }, undefined);
    });
  }
};
