// Every `fastpaca bench` scenario, in the order --help lists them. Adding one is one line here.
import type { Scenario } from '../scenario.js';
import { appendScenario } from './append.js';
import { archiveScenario } from './archive.js';
import { clusterScenario } from './cluster.js';
import { coldStartScenario } from './cold-start.js';
import { durabilityScenario } from './durability.js';
import { failoverScenario } from './failover.js';
import { fillScenario } from './fill.js';
import { mixScenario } from './mix.js';
import { streamScenario } from './stream.js';

export const scenarios: readonly Scenario[] = [
  appendScenario,
  mixScenario,
  coldStartScenario,
  durabilityScenario,
  failoverScenario,
  streamScenario,
  archiveScenario,
  fillScenario,
  clusterScenario,
];
