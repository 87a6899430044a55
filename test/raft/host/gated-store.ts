// A MemoryStore whose writes can be held until released: shows what a host does while its write is
// still in flight (early sends, pipelined turns).

import type { BatchOp, KvStore } from '../../../raft/api.js';
import { MemoryStore } from '../storage/memory-store.js';
import { Cluster } from './harness.js';

/** A MemoryStore whose writes can be held until released. */
export class GatedStore extends MemoryStore {
  private gate: { promise: Promise<void>; release: () => void } | undefined;
  held = 0;

  hold(): void {
    let release = (): void => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.gate = { promise, release };
  }

  release(): void {
    this.gate?.release();
    this.gate = undefined;
  }

  override async write(ops: readonly BatchOp[], options: { readonly sync: boolean }): Promise<void> {
    if (this.gate !== undefined) {
      this.held += 1;
      await this.gate.promise;
    }
    return super.write(ops, options);
  }
}

/** Hosts `ids` on gated stores, all voters of `group`, with a leader elected and the group settled. */
export const gatedCluster = async (
  group: number,
  ids: readonly string[],
  options: { readonly pipelineWrites?: boolean } = {},
): Promise<{ cluster: Cluster; stores: Map<string, GatedStore>; leader: string }> => {
  const stores = new Map<string, GatedStore>(ids.map((id) => [id, new GatedStore()]));
  const cluster = new Cluster({
    ids,
    store: (id): KvStore => stores.get(id) as GatedStore,
    ...(options.pipelineWrites === undefined ? {} : { pipelineWrites: options.pipelineWrites }),
  });
  await cluster.start();
  for (const id of ids) await cluster.host(id).bootstrapGroup(group, [...ids]);
  const leader = await cluster.waitForLeader(group);
  for (let i = 0; i < 5; i += 1) await cluster.round(false);
  return { cluster, stores, leader };
};
