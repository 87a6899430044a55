// The host's public names. The vocabulary (GroupId, Message, ...) comes from core/types.ts and the
// seams (RaftHostOptions, StateMachine, ...) from api.ts, never through here.

export { RaftHost } from './raft-host.js';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './requests.js';
export type { RaftHostStats } from './stats.js';
