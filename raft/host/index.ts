// The host's public names. The vocabulary (GroupId, Message, ...) comes from core/types.ts and the
// seams (RaftHostOptions, StateMachine, ...) from api.ts, never through here.

export { DEFAULT_REQUEST_TIMEOUT_MS, RaftHost, type RaftHostStats } from './raft-host.js';
