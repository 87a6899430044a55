// GET /v1/admin/snapshot: a consistent point-in-time copy of this node's LevelDB, streamed while the
// node keeps serving. The LevelDB iterator is created when the request arrives, which pins
// LevelDB's implicit snapshot: every synced turn written before that moment is in it, nothing
// written after. Authenticated like /v1 (an API key when configured, else protected mode).

import type { TemplatedApp } from 'uWebSockets.js';

import type { KvStore } from '../../raft/index.js';
import { ServiceError } from '../api/errors.js';
import type { Gateway } from '../http/gateway.js';
import type { Logger } from '../telemetry/logger.js';
import { encodeSnapshot, snapshotFormat } from './format.js';

export const snapshotPath = '/v1/admin/snapshot';

export interface SnapshotRouteOptions {
  readonly store: Pick<KvStore, 'iterate'>;
  readonly nodeId: string;
  readonly clustered: boolean;
  readonly logger: Pick<Logger, 'info'>;
  /** A client that reads nothing for this long is cut off. Default 60 s. */
  readonly stallTimeoutMs?: number;
}

/** Snapshots one node streams at once; more get 503 overloaded. */
export const snapshotsAtOnceMax = 2;

export const registerSnapshotRoute = (
  app: TemplatedApp,
  gateway: Gateway,
  options: SnapshotRouteOptions,
): void => {
  const route = `GET ${snapshotPath}`;
  let streaming = 0;
  app.get(snapshotPath, (res, req) => {
    const exchange = gateway.begin(res, route);
    try {
      gateway.admit();
      gateway.authorize(req, res);
    } catch (error) {
      exchange.fail(error);
      return;
    }
    // Each snapshot pins LevelDB's files (compaction cannot drop what its iterator may still read),
    // so a node serves only a few at once.
    if (streaming >= snapshotsAtOnceMax) {
      exchange.fail(
        new ServiceError(
          'overloaded',
          `${snapshotsAtOnceMax} snapshots are being taken already; retry later`,
          {
            retryAfterSeconds: 10,
          },
        ),
      );
      return;
    }
    streaming += 1;
    const createdAt = new Date().toISOString();
    // Created now, synchronously: the point in time the snapshot shows is this one.
    const pairs = options.store.iterate({});
    const started = Date.now();
    options.logger.info({ type: 'snapshot_started', createdAt }, 'online snapshot started');
    const header = {
      format: snapshotFormat,
      node_name: options.nodeId,
      created_at: createdAt,
      clustered: options.clustered,
    };
    void exchange
      .stream(
        [
          ['Content-Type', 'application/octet-stream'],
          ['Content-Disposition', `attachment; filename="fastpaca-${options.nodeId}-${createdAt}.snapshot"`],
          ['Cache-Control', 'no-store'],
        ],
        encodeSnapshot(header, pairs),
        options.stallTimeoutMs,
      )
      .then(() =>
        options.logger.info(
          { type: 'snapshot_finished', ms: Date.now() - started },
          'online snapshot stream ended',
        ),
      )
      .finally(() => {
        streaming -= 1;
      });
  });
};
