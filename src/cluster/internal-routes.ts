// Registers the internal cluster endpoints on the HTTP server (through startHttpServer's `extend`).
// Each checks the cluster secret header in constant time; API keys play no part here.

import { createHash, timingSafeEqual } from 'node:crypto';

import type { TemplatedApp } from 'uWebSockets.js';

import { ServiceError } from '../errors.js';
import type { Gateway } from '../http/gateway.js';
import { jsonReply } from '../http/reply.js';
import type { ClusterStatus, HelloAnswer } from './internal-protocol.js';
import { clusterSecretHeader, helloBody, helloPath, statusPath } from './internal-protocol.js';

export interface InternalRoutesOptions {
  readonly clusterSecret: string | undefined;
  readonly hello: () => HelloAnswer;
  readonly status: () => ClusterStatus;
}

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** True when `offered` is the secret; equal-length digests keep the comparison constant-time. */
export const secretMatches = (secret: string | undefined, offered: string): boolean =>
  secret === undefined || timingSafeEqual(digest(secret), digest(offered));

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
};
