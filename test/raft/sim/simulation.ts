// One simulation run: build the cluster from the seed, boot every node, take the configured number of
// scheduler steps with the checkers after each, then the liveness phase. The result names the seed,
// the step and the first broken invariant, with the actions that led there.

import { SafetyChecker, type InvariantName } from './checkers.js';
import { SimCluster, type ClusterStats, type OpenHost } from './cluster.js';
import { runLiveness } from './liveness.js';
import { Prng } from './prng.js';
import { Scheduler, describeAction } from './scheduler.js';
import { settle } from './settle.js';
import { SimClock } from './sim-clock.js';
import type { SimConfig } from './sim-config.js';
import { SimNetwork, type NetworkStats } from './sim-network.js';

/** Actions kept for the failure report. */
const TRACE_LENGTH = 40;

export interface FoundViolation {
  /** The fault-phase step it was found after; steps + n for round n of the liveness phase. */
  readonly step: number;
  readonly invariant: InvariantName;
  readonly detail: string;
}

export interface SimResult {
  readonly seed: number;
  readonly config: SimConfig;
  readonly stepsRun: number;
  readonly violations: readonly FoundViolation[];
  readonly converged: boolean;
  readonly livenessRounds: number;
  /** The last actions before the first violation (or before the end). */
  readonly trace: readonly string[];
  readonly cluster: ClusterStats;
  readonly network: NetworkStats;
}

/** Debugging hooks: see every step as it happens (e.g. to follow one group on one node). */
export interface SimHooks {
  readonly afterStep?: (step: number, action: string, cluster: SimCluster) => void;
  /** Called after each round of the liveness phase, numbered on from the last fault-phase step. */
  readonly afterRound?: (step: number, cluster: SimCluster) => void;
}

export const runSimulation = async (
  config: SimConfig,
  openHost: OpenHost,
  hooks: SimHooks = {},
): Promise<SimResult> => {
  const prng = new Prng(config.seed);
  const clock = new SimClock();
  const network = new SimNetwork(clock, prng.fork(), {
    delayMsMin: config.delayMsMin,
    delayMsMax: config.delayMsMax,
  });
  const checker = new SafetyChecker();
  const cluster = new SimCluster(config, openHost, clock, network, checker, prng.fork());
  const scheduler = new Scheduler(config, cluster, network, clock, prng.fork());
  const violations: FoundViolation[] = [];
  const trace: string[] = [];
  let reported = 0;

  // Moves new violations (and contract breaks seen by the network) into the result, tagged with `step`.
  const collect = (step: number): boolean => {
    for (const error of network.contractErrors.splice(0)) {
      checker.fail('host-error', `transport contract broken: ${error.stack ?? error.message}`);
    }
    for (const violation of checker.violations.slice(reported)) {
      violations.push({ step, invariant: violation.invariant, detail: violation.detail });
    }
    reported = checker.violations.length;
    return violations.length > 0 && !config.continueAfterViolation;
  };

  for (const node of cluster.nodes) cluster.boot(node);
  await settle();
  let step = 0;
  let stopped = false;
  while (step < config.steps && !stopped) {
    step += 1;
    const action = scheduler.choose();
    if (action === undefined) break;
    const description = `${step}: ${describeAction(action, network)}`;
    if (violations.length === 0) pushTrace(trace, description);
    try {
      scheduler.perform(action);
      await settle();
      await cluster.observe();
    } catch (error) {
      // A host call that throws breaks its contract; the run reports it like any invariant.
      checker.fail(
        'host-error',
        `step threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    hooks.afterStep?.(step, description, cluster);
    stopped = collect(step);
  }

  let liveness = { converged: false, rounds: 0 };
  if (!stopped) {
    liveness = await runLiveness(config, cluster, network, clock, checker, (round) =>
      hooks.afterRound?.(step + round, cluster),
    );
    collect(step + liveness.rounds);
  }
  return {
    seed: config.seed,
    config,
    stepsRun: step,
    violations,
    converged: liveness.converged,
    livenessRounds: liveness.rounds,
    trace,
    cluster: cluster.stats,
    network: network.stats,
  };
};

const pushTrace = (trace: string[], line: string): void => {
  trace.push(line);
  if (trace.length > TRACE_LENGTH) trace.shift();
};

/** A failure report: seed, step and invariant first, then how to replay, then the trace. */
export const formatResult = (result: SimResult): string => {
  const first = result.violations[0];
  const headline =
    first === undefined
      ? `seed ${result.seed}: no violation in ${result.stepsRun} steps`
      : `seed ${result.seed}: step ${first.step}: ${first.invariant} violated: ${first.detail}`;
  const { nodeCount, groupCount, replicasPerGroup, lieAboutFsync, pipelineWrites } = result.config;
  return [
    headline,
    `replay: SIM_SEED=${result.seed} SIM_STEPS=${result.config.steps} npm run test:sim`,
    `cluster: ${nodeCount} nodes, ${groupCount} groups x ${replicasPerGroup} replicas` +
      (lieAboutFsync ? ', disks lie about fsync' : '') +
      (pipelineWrites ? ', pipelined writes' : ''),
    `stats: ${JSON.stringify(result.cluster)} network ${JSON.stringify(result.network)}`,
    ...result.violations.slice(1, 5).map((v) => `also at step ${v.step}: ${v.invariant}: ${v.detail}`),
    'last actions:',
    ...result.trace.map((line) => `  ${line}`),
  ].join('\n');
};
