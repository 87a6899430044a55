// The state machine's window onto the store: reads of one group's state-machine space and writes that
// join the host's next atomic batch. Keys crossing this boundary are suffixes; the prefix
// `[0x80][group][0x01]` is added and stripped here, so a state machine cannot touch another group.

import type { BatchOp, GroupKv, GroupWriteBatch, KeyRange, KvStore } from '../api.js';
import type { GroupId } from '../core/types.js';
import { rangeUnderPrefix, stateMachineKey, stateMachinePrefix } from './keys.js';

const withPrefix = (prefix: Uint8Array, suffix: Uint8Array): Uint8Array => {
  const key = new Uint8Array(prefix.length + suffix.length);
  key.set(prefix, 0);
  key.set(suffix, prefix.length);
  return key;
};

const stripPrefix = async function* (
  entries: AsyncIterable<readonly [Uint8Array, Uint8Array]>,
  prefixBytes: number,
): AsyncGenerator<readonly [Uint8Array, Uint8Array]> {
  for await (const [key, value] of entries) yield [key.subarray(prefixBytes), value];
};

/** Reads see only what is durable in the store; the state machine caches its own unpersisted writes. */
export class StoreGroupKv implements GroupKv {
  private readonly prefix: Uint8Array;

  constructor(
    private readonly store: KvStore,
    group: GroupId,
  ) {
    this.prefix = stateMachinePrefix(group);
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.store.get(withPrefix(this.prefix, key));
  }

  iterate(range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> {
    // The store's iterator is opened now (pinning its point-in-time view); only the mapping is lazy.
    return stripPrefix(this.store.iterate(rangeUnderPrefix(this.prefix, range)), this.prefix.length);
  }
}

/** Collects one apply call's writes, prefixed, into the group's list of ops awaiting the next write. */
export class PrefixedWriteBatch implements GroupWriteBatch {
  constructor(
    private readonly group: GroupId,
    private readonly ops: BatchOp[],
  ) {}

  put(key: Uint8Array, value: Uint8Array): void {
    this.ops.push({ type: 'put', key: stateMachineKey(this.group, key), value });
  }

  del(key: Uint8Array): void {
    this.ops.push({ type: 'del', key: stateMachineKey(this.group, key) });
  }
}
