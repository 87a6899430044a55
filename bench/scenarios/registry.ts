// Every `fastpaca bench` scenario, in the order --help lists them. Adding one is one line here.
// The stream fan-out scenario comes from the streams branch (bench/stream-bench.ts): at merge, wrap
// its exported function in a Scenario (see scenario.ts: it gets the targets, headers, options and
// a recorder for its latencies) and add it to this table.
import type { Scenario } from '../scenario.js';
import { appendScenario } from './append.js';
import { clusterScenario } from './cluster.js';
import { coldStartScenario } from './cold-start.js';
import { durabilityScenario } from './durability.js';
import { failoverScenario } from './failover.js';
import { fillScenario } from './fill.js';
import { mixScenario } from './mix.js';

export const scenarios: readonly Scenario[] = [
  appendScenario,
  mixScenario,
  coldStartScenario,
  durabilityScenario,
  failoverScenario,
  // streamScenario, (bench/stream-bench.ts, from the streams branch)
  fillScenario,
  clusterScenario,
];
