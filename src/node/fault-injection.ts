// Fault injection for the fault suite (test/fault/). Test-only hooks, read once from the environment
// at start and OFF unless their variable is set; no configuration file or flag names them, and a
// production deployment never sets them.
//
// - FASTPACA_FAULT_PEER_ADDRESSES="node-2=127.0.0.1:21001,node-3=127.0.0.1:21002": the gRPC (Raft,
//   forwarding, remote reads) address this node dials for each named peer, in place of the one the
//   member list records. The suite puts a TCP proxy it controls between every ordered pair of nodes.
// - FASTPACA_FAULT_FSYNC_FAIL_AFTER=N: every synced store write after the first N fails (as an EIO
//   from fsync would), so the suite can check that a node whose fsync fails exits.

import type { BatchOp, KeyRange, KvStore, NodeId } from '../../raft/index.js';

export const faultPeerAddressesEnv = 'FASTPACA_FAULT_PEER_ADDRESSES';
export const faultFsyncFailAfterEnv = 'FASTPACA_FAULT_FSYNC_FAIL_AFTER';
export const faultEnvVars: readonly string[] = [faultPeerAddressesEnv, faultFsyncFailAfterEnv];

/** Peer id → address overrides from FASTPACA_FAULT_PEER_ADDRESSES (empty when unset). */
export const faultPeerAddresses = (
  env: Readonly<Record<string, string | undefined>> = process.env,
): ReadonlyMap<NodeId, string> => {
  const overrides = new Map<NodeId, string>();
  for (const entry of (env[faultPeerAddressesEnv] ?? '').split(',')) {
    const at = entry.indexOf('=');
    if (at > 0) overrides.set(entry.slice(0, at).trim(), entry.slice(at + 1).trim());
  }
  return overrides;
};

/** `peers` with each overridden peer's address replaced (peers not in `peers` are not added). */
export const withFaultPeerAddresses = (
  peers: ReadonlyMap<NodeId, string>,
  overrides: ReadonlyMap<NodeId, string>,
): Map<NodeId, string> => {
  const result = new Map(peers);
  for (const [id, address] of overrides) if (result.has(id)) result.set(id, address);
  return result;
};

/** `store` whose synced writes fail after the first N, when FASTPACA_FAULT_FSYNC_FAIL_AFTER=N. */
export const withFsyncFault = (
  store: KvStore,
  env: Readonly<Record<string, string | undefined>> = process.env,
): KvStore => {
  const raw = env[faultFsyncFailAfterEnv];
  if (raw === undefined || raw === '') return store;
  const allowed = Number.parseInt(raw, 10);
  if (!Number.isInteger(allowed) || allowed < 0) return store;
  let synced = 0;
  return {
    get: (key: Uint8Array) => store.get(key),
    write: async (ops: readonly BatchOp[], options: { readonly sync: boolean }) => {
      if (options.sync && ops.length > 0) {
        synced += 1;
        if (synced > allowed) {
          throw Object.assign(new Error(`fault injection: fsync failed (synced write ${synced})`), {
            code: 'EIO',
          });
        }
      }
      await store.write(ops, options);
    },
    iterate: (range: KeyRange) => store.iterate(range),
    close: () => store.close(),
  };
};
