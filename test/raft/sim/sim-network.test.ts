// Proves the simulated network does what the scheduler asks and nothing else: frames wait until
// delivered, partitions (one-way and both ways) stop them and report the peer unreachable, duplicates
// arrive twice, receivers get private copies, dead incarnations neither send nor receive, and snapshot
// transfers resolve true only when the receiver installed them and false when a drop or crash breaks them.

import { describe, expect, it } from 'vitest';
import type { GroupMessage, SnapshotChunk, TransportHandlers } from '../../../raft/api.js';
import { MessageType, type Message, type NodeId } from '../../../raft/core/types.js';
import { Prng } from './prng.js';
import { SimClock } from './sim-clock.js';
import { SimNetwork, type SimTransport } from './sim-network.js';

const PEERS = new Map([
  ['a', 'sim://a'],
  ['b', 'sim://b'],
  ['c', 'sim://c'],
]);

const app = (from: NodeId, to: NodeId, data = Uint8Array.of(1, 2, 3)): GroupMessage => ({
  group: 0,
  message: {
    type: MessageType.App,
    from,
    to,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [{ term: 1, index: 1, kind: 0, data }],
  },
});

interface Inbox {
  readonly messages: { from: NodeId; batch: readonly GroupMessage[] }[];
  readonly snapshots: { from: NodeId; pairs: number; answer: (ok: boolean) => void }[];
}

const setup = async (): Promise<{
  network: SimNetwork;
  clock: SimClock;
  transports: Map<NodeId, SimTransport>;
  inboxes: Map<NodeId, Inbox>;
}> => {
  const clock = new SimClock();
  const network = new SimNetwork(clock, new Prng(7), { delayMsMin: 0, delayMsMax: 0 });
  const transports = new Map<NodeId, SimTransport>();
  const inboxes = new Map<NodeId, Inbox>();
  for (const node of PEERS.keys()) {
    const { transport, inbox } = await connect(network, node);
    transports.set(node, transport);
    inboxes.set(node, inbox);
  }
  return { network, clock, transports, inboxes };
};

const connect = async (
  network: SimNetwork,
  node: NodeId,
): Promise<{ transport: SimTransport; inbox: Inbox }> => {
  const transport = network.connect(node);
  transport.setPeers(PEERS);
  const inbox: Inbox = { messages: [], snapshots: [] };
  const handlers: TransportHandlers = {
    onMessages: (from, batch) => inbox.messages.push({ from, batch }),
    onSnapshot: (from, _group, _message, pairs) =>
      new Promise<boolean>((answer) => inbox.snapshots.push({ from, pairs: pairs.length, answer })),
  };
  await transport.start(handlers);
  return { transport, inbox };
};

const deliverAll = (network: SimNetwork): number => {
  let delivered = 0;
  for (let round = 0; round < 10 && network.deliverable().length > 0; round += 1) {
    for (const frame of network.deliverable()) {
      network.deliver(frame.id);
      delivered += 1;
    }
  }
  return delivered;
};

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const snapMessage: Message = {
  type: MessageType.Snap,
  from: 'a',
  to: 'b',
  term: 2,
  snapshot: { index: 5, term: 2, conf: { voters: ['a', 'b', 'c'], learners: [] } },
};

async function* chunks(count: number): AsyncGenerator<SnapshotChunk> {
  for (let seq = 0; seq < count; seq += 1) {
    yield {
      group: 0,
      message: snapMessage,
      seq,
      pairs: [[Uint8Array.of(seq), Uint8Array.of(seq)]],
      last: seq === count - 1,
    };
  }
}

const get = <K, V>(map: ReadonlyMap<K, V>, key: K): V => {
  const value = map.get(key);
  if (value === undefined) throw new Error(`missing ${String(key)}`);
  return value;
};

describe('SimNetwork', () => {
  it('holds frames until their delay has passed and the scheduler delivers them', async () => {
    const clock = new SimClock();
    const network = new SimNetwork(clock, new Prng(1), { delayMsMin: 10, delayMsMax: 10 });
    const a = (await connect(network, 'a')).transport;
    const b = await connect(network, 'b');
    a.send('b', [app('a', 'b')]);
    expect(network.inFlight()).toHaveLength(1);
    expect(network.deliverable()).toHaveLength(0);
    clock.advance(10);
    expect(deliverAll(network)).toBe(1);
    expect(b.inbox.messages).toHaveLength(1);
    expect(b.inbox.messages[0]?.from).toBe('a');
  });

  it('gives each delivery a private copy of the data', async () => {
    const { network, transports, inboxes } = await setup();
    const data = Uint8Array.of(9, 9);
    get(transports, 'a').send('b', [app('a', 'b', data)]);
    data[0] = 0;
    const frame = network.inFlight()[0];
    if (frame === undefined) throw new Error('no frame');
    network.duplicate(frame.id);
    deliverAll(network);
    const received = get(inboxes, 'b').messages.map((m) => m.batch[0]?.message.entries?.[0]?.data);
    expect(received).toHaveLength(2);
    expect([...(received[0] ?? [])]).toEqual([9, 9]);
    expect(received[0]).not.toBe(received[1]);
  });

  it('cuts one direction only on an asymmetric partition, and reports the peer unreachable', async () => {
    const { network, transports, inboxes } = await setup();
    network.cut('a', 'b');
    get(transports, 'a').send('b', [app('a', 'b')]);
    get(transports, 'b').send('a', [app('b', 'a')]);
    deliverAll(network);
    expect(get(inboxes, 'b').messages).toHaveLength(0);
    expect(get(inboxes, 'a').messages).toHaveLength(1);
    expect(get(transports, 'a').drainUnreachable()).toEqual(['b']);
    expect(get(transports, 'a').drainUnreachable()).toEqual([]);
  });

  it('drops frames already in flight when a partition starts, and delivers again once healed', async () => {
    const { network, transports, inboxes } = await setup();
    get(transports, 'a').send('c', [app('a', 'c')]);
    network.partition(['a'], ['b', 'c']);
    deliverAll(network);
    expect(get(inboxes, 'c').messages).toHaveLength(0);
    network.heal();
    get(transports, 'a').send('c', [app('a', 'c')]);
    deliverAll(network);
    expect(get(inboxes, 'c').messages).toHaveLength(1);
  });

  it('silences a crashed incarnation and delivers to its successor only', async () => {
    const { network, transports, inboxes } = await setup();
    network.disconnect('b');
    get(transports, 'b').send('a', [app('b', 'a')]);
    get(transports, 'a').send('b', [app('a', 'b')]);
    deliverAll(network);
    expect(get(inboxes, 'a').messages).toHaveLength(0);
    expect(get(inboxes, 'b').messages).toHaveLength(0);
    const successor = await connect(network, 'b');
    get(transports, 'a').send('b', [app('a', 'b')]);
    deliverAll(network);
    expect(successor.inbox.messages).toHaveLength(1);
  });

  it('resolves a snapshot transfer with the receiver answer, carried back as a frame', async () => {
    const { network, transports, inboxes } = await setup();
    const sent = get(transports, 'a').sendSnapshot('b', chunks(3));
    await flush();
    deliverAll(network);
    const install = get(inboxes, 'b').snapshots[0];
    expect(install?.pairs).toBe(3);
    let settled: boolean | undefined;
    void sent.then((ok) => (settled = ok));
    install?.answer(true);
    await flush();
    expect(settled).toBeUndefined();
    deliverAll(network);
    expect(await sent).toBe(true);
    expect(network.stats.snapshotsInstalled).toBe(1);
  });

  it('fails a snapshot transfer whose frame is dropped or whose receiver crashes mid-install', async () => {
    const { network, transports, inboxes } = await setup();
    const dropped = get(transports, 'a').sendSnapshot('b', chunks(1));
    await flush();
    const frame = network.inFlight()[0];
    if (frame === undefined) throw new Error('no frame');
    network.drop(frame.id);
    expect(await dropped).toBe(false);

    const interrupted = get(transports, 'a').sendSnapshot('c', chunks(2));
    await flush();
    deliverAll(network);
    expect(get(inboxes, 'c').snapshots).toHaveLength(1);
    network.disconnect('c');
    expect(await interrupted).toBe(false);
  });

  it('reports chunks out of order as a broken contract and fails the transfer', async () => {
    const { network, transports } = await setup();
    async function* unordered(): AsyncGenerator<SnapshotChunk> {
      yield { group: 0, message: snapMessage, seq: 1, pairs: [], last: true };
    }
    expect(await get(transports, 'a').sendSnapshot('b', unordered())).toBe(false);
    expect(network.contractErrors).toHaveLength(1);
  });
});
