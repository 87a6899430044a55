// The deterministic simulation suite: the real RaftHost (several groups per node) over the simulated disk
// and network, driven by a seeded scheduler through crashes (unsynced writes lost), restarts, partitions
// (symmetric and one-way), drops, duplicates, reorders and delays, slow disks, leadership transfers, and
// log compaction with snapshot installs. After every step the checkers assert election safety, log
// matching, leader completeness, identical applied prefixes, exactly-once apply of every acknowledged
// proposal and linearizable reads; then the liveness phase heals everything and demands that every
// group elects a leader and every replica holds the whole applied sequence (acknowledged proposals
// included) within a bounded number of rounds.
//
// Each scenario owns a block of 1000 seeds, so a seed alone names its scenario: a failure prints it and
// `SIM_SEED=<seed> npm run test:sim` replays exactly that run. `SIM_RUNS=<n>` runs n seeds per scenario
// (a longer soak than CI), `SIM_OFFSET=<k>` starts k seeds into each block, `SIM_STEPS=<n>` changes the
// length of the fault phase.
//
// The last test breaks a rule on purpose (disks that acknowledge fsync before data is durable) and
// shows the checkers catch it: the simulator can fail.

import { afterAll, describe, expect, it } from 'vitest';
import { RaftHost } from '../../../raft/host/index.js';
import type { OpenHost } from './cluster.js';
import {
  DEFAULT_WEIGHTS,
  SIM_LIMITS,
  defaultSimConfig,
  readSimEnvironment,
  type SimConfig,
} from './sim-config.js';
import { formatResult, runSimulation, type SimResult } from './simulation.js';

const openHost: OpenHost = (options) => RaftHost.open(options);

interface Scenario {
  readonly name: string;
  /** First seed of the scenario's block of 1000. */
  readonly base: number;
  /** Seeds run in CI (SIM_RUNS overrides). */
  readonly runs: number;
  readonly overrides: (seed: number) => Partial<SimConfig>;
}

const SEED_BLOCK = 1000;

const SCENARIOS: readonly Scenario[] = [
  {
    // 3-5 nodes, 3 groups of 3 replicas, the default fault mix (one node down at a time).
    name: 'mixed faults',
    base: 1,
    runs: 24,
    overrides: () => ({ steps: 3000 }),
  },
  {
    // Every group on all five nodes; two may be down at once, so a group can lose its quorum.
    name: 'five replicas, two down',
    base: 1 * SEED_BLOCK,
    runs: 8,
    overrides: () => ({
      nodeCount: 5,
      groupCount: 2,
      replicasPerGroup: 5,
      downNodesMax: 2,
      steps: 2_000,
      weights: { ...DEFAULT_WEIGHTS, crash: 1.2 },
    }),
  },
  {
    // Fsyncs complete rarely: turns pile up behind the disk, crashes lose more unsynced writes.
    name: 'slow disks',
    base: 2 * SEED_BLOCK,
    runs: 8,
    overrides: () => ({
      steps: 2500,
      weights: { ...DEFAULT_WEIGHTS, fsync: 4, crash: 1.2, restart: 3 },
    }),
  },
  {
    // Many drops, duplicates and delays (reorders), partitions that come and go often.
    name: 'hostile network',
    base: 3 * SEED_BLOCK,
    runs: 8,
    overrides: () => ({
      steps: 2500,
      weights: { ...DEFAULT_WEIGHTS, drop: 12, duplicate: 8, delay: 8, partition: 2, heal: 2 },
      delayMsMax: 60,
    }),
  },
  {
    // Leadership moves often (TimeoutNow), with reads and proposals racing the transfers.
    name: 'leader churn',
    base: 4 * SEED_BLOCK,
    runs: 6,
    overrides: () => ({
      steps: 2500,
      weights: { ...DEFAULT_WEIGHTS, transfer: 6, read: 8, crash: 0.3 },
    }),
  },
  {
    // Tiny logs and messages: followers that fall behind need snapshots all the time.
    name: 'compaction pressure',
    base: 5 * SEED_BLOCK,
    runs: 8,
    overrides: () => ({
      steps: 2500,
      limits: { ...SIM_LIMITS, logRetainEntries: 4, msgBytesMax: 64, inflightMsgsMax: 2 },
      weights: { ...DEFAULT_WEIGHTS, propose: 25, drop: 6, partition: 1.2 },
    }),
  },
  {
    // Logs compacted by their bytes (a budget of a few entries) while the count limit never binds:
    // the bytes path must keep every healthy follower's window and hand the rest snapshots.
    name: 'compaction by bytes',
    base: 7 * SEED_BLOCK,
    runs: 6,
    overrides: () => ({
      steps: 2500,
      limits: { ...SIM_LIMITS, logRetainEntries: 10_000, logRetainBytes: 96 },
      weights: { ...DEFAULT_WEIGHTS, propose: 25, drop: 6, partition: 1.2 },
    }),
  },
  {
    // Groups grow and shrink: learners are added (new replicas built by snapshot), promoted, and
    // members removed, the leader included, while the usual faults go on.
    name: 'membership changes',
    base: 6 * SEED_BLOCK,
    runs: 10,
    overrides: (seed) => ({
      steps: 3000,
      nodeCount: 4 + (seed % 2),
      weights: { ...DEFAULT_WEIGHTS, reconfigure: 3, crash: 0.3, partition: 0.3 },
    }),
  },
];

/** The broken-rule scenario: its own seed block, so its seeds replay too. */
const LYING_DISKS: Scenario = {
  name: 'disks that lie about fsync',
  base: 9 * SEED_BLOCK,
  runs: 20,
  // Rare fsyncs (a lying disk makes data durable only when its cache is written back), frequent crashes,
  // many proposals and few network faults: acknowledged writes get lost, and elections follow.
  overrides: () => ({
    lieAboutFsync: true,
    nodeCount: 3,
    steps: 800,
    livenessRoundsMax: 120,
    weights: {
      ...DEFAULT_WEIGHTS,
      fsync: 3,
      crash: 2,
      restart: 4,
      propose: 25,
      partition: 0.2,
      drop: 1,
      duplicate: 1,
      delay: 1,
    },
  }),
};

const env = readSimEnvironment();

const blockOf = (seed: number): number => Math.floor(seed / SEED_BLOCK);

const scenarioOf = (seed: number): Scenario =>
  [...SCENARIOS, LYING_DISKS].find((s) => blockOf(s.base) === blockOf(seed)) ?? (SCENARIOS[0] as Scenario);

const configFor = (scenario: Scenario, seed: number): SimConfig =>
  defaultSimConfig(seed, {
    ...scenario.overrides(seed),
    ...(env.steps === undefined ? {} : { steps: env.steps }),
  });

const seedsOf = (scenario: Scenario): number[] =>
  Array.from({ length: env.runs ?? scenario.runs }, (_, i) => scenario.base + (env.offset ?? 0) + i);

/** What the correct runs exercised together, so a quiet suite cannot be a suite that did nothing. */
const totals = {
  runs: 0,
  acknowledged: 0,
  crashes: 0,
  snapshotsInstalled: 0,
  readsServed: 0,
  transfers: 0,
  reconfigured: 0,
  dropped: 0,
  duplicated: 0,
};

const addToTotals = (result: SimResult): void => {
  totals.runs += 1;
  totals.acknowledged += result.cluster.acknowledged;
  totals.crashes += result.cluster.crashes;
  totals.readsServed += result.cluster.readsServed;
  totals.transfers += result.cluster.transfers;
  totals.reconfigured += result.cluster.reconfigured;
  totals.snapshotsInstalled += result.network.snapshotsInstalled;
  totals.dropped += result.network.dropped;
  totals.duplicated += result.network.duplicated;
};

const expectCorrect = (scenario: Scenario, result: SimResult): void => {
  const report = `[${scenario.name}] ${formatResult(result)}`;
  expect(result.violations, report).toEqual([]);
  expect(result.converged, report).toBe(true);
  // A run that stopped early (nothing left to schedule) would pass vacuously.
  expect(result.stepsRun, report).toBe(result.config.steps);
};

if (env.seed !== undefined) {
  const seed = env.seed;
  const scenario = scenarioOf(seed);
  describe(`replay of seed ${seed} (${scenario.name})`, () => {
    it(`seed ${seed}`, async () => {
      const result = await runSimulation(configFor(scenario, seed), openHost);
      if (scenario === LYING_DISKS) {
        // Replaying a lying-disk seed shows what it found (or that it found nothing).
        console.log(formatResult(result));
        return;
      }
      expectCorrect(scenario, result);
    });
  });
} else {
  describe('raft simulation: safety after every step, liveness after healing', () => {
    for (const scenario of SCENARIOS) {
      describe(scenario.name, () => {
        for (const seed of seedsOf(scenario)) {
          it(`seed ${seed}`, async () => {
            const result = await runSimulation(configFor(scenario, seed), openHost);
            expectCorrect(scenario, result);
            addToTotals(result);
          });
        }
      });
    }

    afterAll(() => {
      console.log(`simulation totals: ${JSON.stringify(totals)}`);
    });

    it('exercised the faults it claims to (acks, crashes, snapshots, reads, transfers, membership changes, mangled frames)', () => {
      // Runs only count once every seed above passed (tests of a file run in order).
      expect(totals.runs).toBe(SCENARIOS.reduce((sum, s) => sum + seedsOf(s).length, 0));
      expect(totals.acknowledged).toBeGreaterThan(totals.runs * 10);
      expect(totals.crashes).toBeGreaterThan(totals.runs);
      expect(totals.snapshotsInstalled).toBeGreaterThan(0);
      expect(totals.readsServed).toBeGreaterThan(0);
      expect(totals.transfers).toBeGreaterThan(0);
      expect(totals.reconfigured).toBeGreaterThan(0);
      expect(totals.dropped).toBeGreaterThan(0);
      expect(totals.duplicated).toBeGreaterThan(0);
    });
  });

  describe('the simulator has teeth', () => {
    it('catches disks that acknowledge fsync before the data is durable', async () => {
      // Bounded: the first seed of the block that breaks an invariant ends the search.
      const found: SimResult[] = [];
      for (const seed of seedsOf(LYING_DISKS)) {
        const result = await runSimulation(configFor(LYING_DISKS, seed), openHost);
        if (result.violations.length > 0) {
          found.push(result);
          break;
        }
      }
      const first = found[0];
      expect(first, 'no seed of the lying-disk scenario broke an invariant').toBeDefined();
      if (first === undefined) return;
      // Losing writes the host was told are durable shows up as lost or diverging data, or as a group
      // that cannot converge; never as the host breaking its own contract.
      expect(first.violations[0]?.invariant).not.toBe('host-error');
      console.log(`lying disks caught: ${formatResult(first).split('\n')[0]}`);
      // The same run with honest disks is correct: the lie, not the scenario, broke the invariant.
      const honest = await runSimulation({ ...first.config, lieAboutFsync: false }, openHost);
      expectCorrect(LYING_DISKS, honest);
    });
  });
}
