// GET /v1/admin/snapshot: a consistent point-in-time copy of this node's LevelDB, streamed while the
// node keeps serving. The LevelDB iterator is created when the request arrives, which pins
// LevelDB's implicit snapshot: every synced turn written before that moment is in it, nothing
// written after. Authenticated like /v1 (an API key when configured, else protected mode).

import type { TemplatedApp } from 'uWebSockets.js';

import type { KvStore } from '../../raft/index.js';
import type { Gateway } from '../http/gateway.js';
import type { Logger } from '../telemetry/logger.js';
import { encodeSnapshot, snapshotFormat } from './format.js';

export const snapshotPath = '/v1/admin/snapshot';

export interface SnapshotRouteOptions {
  readonly store: Pick<KvStore, 'iterate'>;
  readonly nodeId: string;
  readonly clustered: boolean;
  readonly logger: Pick<Logger, 'info'>;
}

export const registerSnapshotRoute = (
  app: TemplatedApp,
  gateway: Gateway,
  options: SnapshotRouteOptions,
): void => {
  const route = `GET ${snapshotPath}`;
  app.get(snapshotPath, (res, req) => {
    const exchange = gateway.begin(res, route);
    try {
      gateway.admit();
      gateway.authorize(req, res);
    } catch (error) {
      exchange.fail(error);
      return;
    }
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
      )
      .then(() =>
        options.logger.info(
          { type: 'snapshot_finished', ms: Date.now() - started },
          'online snapshot streamed',
        ),
      );
  });
};
