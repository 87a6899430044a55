// Defaults that depend on other options. They apply only when no source set the option, and are
// validated like any other value (a port of 65000 makes a default raft port of 66000 an error).
import { defaultTokenizerWorkers, type OptionKey } from './options.js';

/** The options the derived defaults read, already resolved and validated. */
export interface DerivedInputs {
  readonly port: number;
  readonly clusterSeed: readonly unknown[];
  readonly archiverEnabled: boolean;
  readonly ratePerKey: number;
}

export interface DerivedDefault {
  readonly value: unknown;
  /** Shown in error messages: "default: port + 1000". */
  readonly how: string;
}

export const deriveDefaults = (resolved: DerivedInputs): ReadonlyMap<OptionKey, DerivedDefault> =>
  new Map<OptionKey, DerivedDefault>([
    // Port 0 asks the OS for a free port; 1000 would be a fixed privileged one, so keep 0 for both.
    ['raftPort', { value: resolved.port === 0 ? 0 : resolved.port + 1000, how: 'port + 1000' }],
    [
      'expectedClusterSize',
      { value: resolved.clusterSeed.length > 0 ? 3 : 1, how: '3 with a cluster seed, else 1' },
    ],
    ['migrateOnBoot', { value: resolved.archiverEnabled, how: 'same as archiver.enabled' }],
    ['rateBurst', { value: Math.max(1, resolved.ratePerKey), how: 'rate_per_key, at least 1' }],
    ['tokenizerWorkers', { value: defaultTokenizerWorkers(), how: 'CPU count - 1, between 1 and 4' }],
  ]);
