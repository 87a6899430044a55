// One simulation's shape: cluster size, fault mix, Raft timing and bounds. Everything a run does follows
// from this object and its seed. `SIM_SEED`, `SIM_RUNS`, `SIM_STEPS` and `SIM_OFFSET` override the test
// defaults.

import type { RaftHostLimits } from '../../../raft/api.js';

/** Relative weights of the scheduler's actions; 0 disables an action. */
export interface ActionWeights {
  readonly tick: number;
  readonly turn: number;
  readonly deliver: number;
  readonly fsync: number;
  readonly propose: number;
  readonly read: number;
  readonly drop: number;
  readonly duplicate: number;
  readonly delay: number;
  readonly crash: number;
  readonly restart: number;
  readonly partition: number;
  readonly heal: number;
  /** Ask a group's leader to hand leadership to another voter (TimeoutNow). */
  readonly transfer: number;
  /** Ask a group's leader for a membership change (add a learner, promote it, remove a member). */
  readonly reconfigure: number;
}

export interface SimConfig {
  readonly seed: number;
  readonly nodeCount: number;
  readonly groupCount: number;
  /** Voters per group (placed on distinct nodes, chosen by the seed); capped at nodeCount. */
  readonly replicasPerGroup: number;
  /** Steps of the fault phase. */
  readonly steps: number;
  readonly weights: ActionWeights;
  /** At most this many nodes are down at once during the fault phase. */
  readonly downNodesMax: number;
  /** The broken rule: every disk acknowledges synced writes before they are durable. */
  readonly lieAboutFsync: boolean;
  /**
   * Hosts pipeline their writes (RaftHostOptions.pipelineWrites): turns overlap the fsync in flight.
   * Odd seeds pipeline, even ones do not, so every scenario runs both.
   */
  readonly pipelineWrites: boolean;
  /** Simulated milliseconds per Raft tick of one node. */
  readonly tickMs: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly proposeTimeoutMs: number;
  readonly limits: RaftHostLimits;
  /** Rounds (one tick on every node each) the healed cluster gets to converge. */
  readonly livenessRoundsMax: number;
  /** Keep stepping after a violation (to see whether a given kind shows up at all). */
  readonly continueAfterViolation: boolean;
}

export const DEFAULT_WEIGHTS: ActionWeights = {
  tick: 30,
  turn: 30,
  deliver: 40,
  fsync: 25,
  propose: 12,
  read: 3,
  drop: 3,
  duplicate: 2,
  delay: 2,
  crash: 0.6,
  restart: 2,
  partition: 0.6,
  heal: 1,
  transfer: 0.5,
  reconfigure: 0,
};

/** Small limits, so flow control, chunked appends and snapshots all happen within a short run. */
export const SIM_LIMITS: RaftHostLimits = {
  proposalQueueMax: 64,
  pendingProposalsMax: 128,
  inboundQueueMax: 4_096,
  inflightBytesMax: 16 * 1024,
  inflightMsgsMax: 4,
  msgBytesMax: 512,
  uncommittedBytesMax: 16 * 1024,
  logRetainEntries: 12,
};

export const defaultSimConfig = (seed: number, overrides: Partial<SimConfig> = {}): SimConfig => ({
  seed,
  nodeCount: 3 + (Math.abs(seed) % 3),
  groupCount: 3,
  replicasPerGroup: 3,
  steps: 1_500,
  weights: DEFAULT_WEIGHTS,
  downNodesMax: 1,
  lieAboutFsync: false,
  pipelineWrites: Math.abs(seed) % 2 === 1,
  tickMs: 10,
  delayMsMin: 1,
  delayMsMax: 25,
  electionTicks: 10,
  heartbeatTicks: 2,
  proposeTimeoutMs: 3_000,
  limits: SIM_LIMITS,
  livenessRoundsMax: 400,
  continueAfterViolation: false,
  ...overrides,
});

/** Test-run knobs from the environment: one seed to replay, or more runs and steps than CI uses. */
export interface SimEnvironment {
  readonly seed: number | undefined;
  readonly runs: number | undefined;
  readonly steps: number | undefined;
  /** Seeds start this far into each scenario's block (a soak past the seeds CI runs). */
  readonly offset: number | undefined;
}

const parseInteger = (name: string, raw: string | undefined): number | undefined => {
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return value;
};

export const readSimEnvironment = (env: NodeJS.ProcessEnv = process.env): SimEnvironment => ({
  seed: parseInteger('SIM_SEED', env.SIM_SEED),
  runs: parseInteger('SIM_RUNS', env.SIM_RUNS),
  steps: parseInteger('SIM_STEPS', env.SIM_STEPS),
  offset: parseInteger('SIM_OFFSET', env.SIM_OFFSET),
});
