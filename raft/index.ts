// The public surface of raft/: the seams (api.ts), the vocabulary (core/types.ts), the host, its
// real-time driver, the LevelDB store and the gRPC transport. Everything outside raft/ (src/, the
// raft process harness in bench/) imports from here only; tests may reach inside.

export type * from './api.js';
export * from './core/types.js';
export { DEFAULT_REQUEST_TIMEOUT_MS, RaftHost, type RaftHostStats } from './host/index.js';
export { startHostLoop, type HostLoop, type LoopDrivableHost } from './driver.js';
export { openLevelStore } from './storage/level-store.js';
export { inspectNewestLog, type LogTail } from './storage/leveldb-log-tail.js';
export { StorageCorruptionError } from './storage/checksum-frame.js';
export {
  createGrpcTransport,
  type ExtraGrpcService,
  type GrpcTransport,
  type GrpcTransportOptions,
} from './transport/grpc-transport.js';
export type { LinkError } from './transport/peer-link.js';
export type { TransportStats } from './transport/transport-stats.js';
