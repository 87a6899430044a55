// The host's counters, for metrics and benchmarks. Every phase of a turn bumps its own; they are
// plain fields on one object so counting costs nothing on the hot path.

/** Counters for metrics and benchmarks; monotonic since the host opened. */
export interface RaftHostStats {
  readonly turns: number;
  readonly storeWrites: number;
  readonly syncedWrites: number;
  readonly entriesPersisted: number;
  readonly entriesApplied: number;
  readonly proposals: number;
  readonly messagesSent: number;
  readonly framesSent: number;
  readonly messagesReceived: number;
  readonly messagesDropped: number;
  /** Replicated entries' messages and snapshots dropped because refuseEntries said so. */
  readonly entriesRefused: number;
  readonly snapshotsSent: number;
  readonly snapshotsSendFailed: number;
  readonly snapshotsReceived: number;
  readonly compactions: number;
}

export type MutableStats = { -readonly [K in keyof RaftHostStats]: RaftHostStats[K] };

export const zeroStats = (): MutableStats => ({
  turns: 0,
  storeWrites: 0,
  syncedWrites: 0,
  entriesPersisted: 0,
  entriesApplied: 0,
  proposals: 0,
  messagesSent: 0,
  framesSent: 0,
  messagesReceived: 0,
  messagesDropped: 0,
  entriesRefused: 0,
  snapshotsSent: 0,
  snapshotsSendFailed: 0,
  snapshotsReceived: 0,
  compactions: 0,
});
