// The public surface of raft/: the seams (api.ts), the vocabulary (core/types.ts), the host, its
// real-time driver and the LevelDB store. The service imports from here only.

export type * from './api.js';
export * from './core/types.js';
export { DEFAULT_REQUEST_TIMEOUT_MS, RaftHost, type RaftHostStats } from './host/index.js';
export { startHostLoop, type HostLoop, type LoopDrivableHost } from './driver.js';
export { openLevelStore } from './storage/level-store.js';
export { StorageCorruptionError } from './storage/checksum-frame.js';
