// The test-only fault hooks (src/node/fault-injection.ts): off unless their variable is set, and exact
// when set.

import { describe, expect, it } from 'vitest';

import type { BatchOp, KeyRange, KvStore } from '../../raft/api.js';
import {
  faultPeerAddresses,
  withFaultPeerAddresses,
  withFsyncFault,
} from '../../src/node/fault-injection.js';

const memoryStore = (): KvStore & { writes: number } => {
  const store = {
    writes: 0,
    get: () => Promise.resolve(undefined),
    write: (_ops: readonly BatchOp[], _options: { readonly sync: boolean }) => {
      store.writes += 1;
      return Promise.resolve();
    },
    iterate: (_range: KeyRange): AsyncIterable<readonly [Uint8Array, Uint8Array]> => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: undefined }) }),
    }),
    close: () => Promise.resolve(),
  };
  return store;
};

const put: BatchOp = { type: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) };

describe('fault injection hooks', () => {
  it('are off when their variables are unset', () => {
    const store = memoryStore();
    expect(withFsyncFault(store, {})).toBe(store);
    expect(faultPeerAddresses({}).size).toBe(0);
  });

  it('override only the peers they name, and only peers already known', () => {
    const overrides = faultPeerAddresses({
      FASTPACA_FAULT_PEER_ADDRESSES: 'node-2=127.0.0.1:21001, node-9=127.0.0.1:21009',
    });
    expect([...overrides]).toEqual([
      ['node-2', '127.0.0.1:21001'],
      ['node-9', '127.0.0.1:21009'],
    ]);
    const peers = new Map([
      ['node-2', '127.0.0.1:5000'],
      ['node-3', '127.0.0.1:5001'],
    ]);
    expect([...withFaultPeerAddresses(peers, overrides)]).toEqual([
      ['node-2', '127.0.0.1:21001'],
      ['node-3', '127.0.0.1:5001'],
    ]);
  });

  it('fail every synced write after the first N, and no unsynced one', async () => {
    const inner = memoryStore();
    const store = withFsyncFault(inner, { FASTPACA_FAULT_FSYNC_FAIL_AFTER: '2' });
    await store.write([put], { sync: true });
    await store.write([put], { sync: false });
    await store.write([put], { sync: true });
    await expect(store.write([put], { sync: true })).rejects.toThrow('fault injection: fsync failed');
    await store.write([put], { sync: false });
    await expect(store.write([put], { sync: true })).rejects.toMatchObject({ code: 'EIO' });
    expect(inner.writes).toBe(4);
  });
});
