// Proves the gRPC transport delivers batches between real transports on 127.0.0.1 (in order, with
// the sender's id), splits oversized batches, reconnects to a restarted peer, refuses callers with
// a wrong or missing secret, misaddressed frames and unbounded queueing, and drops, counts and
// reports sends to unreachable peers. Waits are bounded polls; every transport is stopped after.

import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { GroupMessage } from '../../../raft/api.js';
import { EntryKind, MessageType } from '../../../raft/core/types.js';
import { createGrpcTransport } from '../../../raft/transport/grpc-transport.js';
import { Cluster, connect, heartbeat, messagesOf, SECRET, sendUntil, waitFor } from './harness.js';
import type { Node, NodeOptions } from './harness.js';

const cluster = new Cluster();
afterEach(() => cluster.stopAll());

/** Transports a and b (both with `options`), once a's stream to b is open. */
const openPair = async (options: NodeOptions = { clusterSecret: SECRET }): Promise<[Node, Node]> => {
  const [a, b] = await Promise.all([cluster.start('a', options), cluster.start('b', options)]);
  connect(a, b);
  await sendUntil(
    'the stream to open',
    () => a.transport.send('b', [heartbeat('a', 'b', 0, 0)]),
    () => b.received.length > 0,
  );
  return [a, b];
};

/** The App messages `node` received, once there are `count` of them. */
const appsReceived = async (node: Node, count: number): Promise<GroupMessage[]> => {
  const apps = (): GroupMessage[] => messagesOf(node).filter((m) => m.message.type === MessageType.App);
  await waitFor(`${count} App messages`, () => apps().length >= count);
  return apps();
};

const appWith = (from: string, to: string, group: number, bytes: number): GroupMessage => ({
  group,
  message: {
    type: MessageType.App,
    from,
    to,
    term: 3,
    index: 10,
    logTerm: 3,
    commit: 9,
    entries: [{ term: 3, index: 11, kind: EntryKind.Normal, data: new Uint8Array(bytes).fill(group % 251) }],
  },
});

describe('grpc transport: delivery', () => {
  it('exchanges batches between three transports, each frame whole and attributed to its sender', async () => {
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => cluster.start(id)));
    connect(...nodes);
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const batch = [0, 1, 2].map((group) => heartbeat(from.id, to.id, group, group + 10));
        await sendUntil(
          `${from.id} -> ${to.id}`,
          () => from.transport.send(to.id, batch),
          () => to.received.some((entry) => entry.from === from.id),
        );
      }
    }
    for (const node of nodes) {
      for (const { from, batch } of node.received) {
        expect(batch.map((m) => m.group)).toEqual([0, 1, 2]);
        expect(batch.every((m) => m.message.from === from && m.message.to === node.id)).toBe(true);
        expect(batch.map((m) => m.message.commit)).toEqual([10, 11, 12]);
      }
      expect(node.transport.stats().framesReceived).toBe(node.received.length);
    }
  });

  it('keeps frame order on one stream', async () => {
    const [a, b] = await openPair();
    const before = b.received.length;
    for (let commit = 1; commit <= 200; commit++) a.transport.send('b', [heartbeat('a', 'b', 0, commit)]);
    await waitFor('200 frames', () => b.received.length >= before + 200);
    const commits = b.received.slice(before).map((entry) => entry.batch[0]?.message.commit);
    expect(commits).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(a.transport.stats().framesDropped).toBe(0);
  });

  it('splits a batch larger than frameBytesMax into frames and drops only a single oversized message', async () => {
    const [a, b] = await openPair({ clusterSecret: SECRET, frameBytesMax: 64 * 1024 });
    const sentBefore = a.transport.stats();
    const batch = Array.from({ length: 10 }, (_, group) => appWith('a', 'b', group, 20 * 1024));
    a.transport.send('b', [...batch, appWith('a', 'b', 99, 100 * 1024)]);
    const apps = await appsReceived(b, 10);
    expect(apps.map((m) => m.group)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(apps[3]?.message.entries?.[0]?.data).toEqual(batch[3]?.message.entries?.[0]?.data);
    const stats = a.transport.stats();
    expect(stats.framesSent - sentBefore.framesSent).toBeGreaterThan(1);
    expect(stats.messagesSent - sentBefore.messagesSent).toBe(10);
    expect(stats.messagesDropped - sentBefore.messagesDropped).toBe(1);
    expect(a.transport.drainUnreachable()).toEqual(['b']);
  });

  it('sends a message larger than frameTargetBytes in a frame of its own, up to frameBytesMax', async () => {
    // One entry as large as a request body must reach the followers, or its group could never commit.
    const [a, b] = await openPair({
      clusterSecret: SECRET,
      frameTargetBytes: 16 * 1024,
      frameBytesMax: 256 * 1024,
    });
    const sentBefore = a.transport.stats();
    const large = [1, 2, 3].map((group) => appWith('a', 'b', group, 100 * 1024));
    a.transport.send('b', [appWith('a', 'b', 0, 1024), ...large]);
    const apps = await appsReceived(b, 4);
    expect(apps.map((m) => m.group)).toEqual([0, 1, 2, 3]);
    expect(apps[2]?.message.entries?.[0]?.data).toEqual(large[1]?.message.entries?.[0]?.data);
    const stats = a.transport.stats();
    expect(stats.framesSent - sentBefore.framesSent).toBeGreaterThanOrEqual(3);
    expect(stats.messagesDropped - sentBefore.messagesDropped).toBe(0);
  });

  it('refuses frames addressed to another node (a stale address book)', async () => {
    const [a, b, c] = await Promise.all([cluster.start('a'), cluster.start('b'), cluster.start('c')]);
    // a believes b lives at c's address.
    a.transport.setPeers(new Map([['b', c.address]]));
    await waitFor('c to refuse a frame', () => {
      a.transport.send('b', [heartbeat('a', 'b', 0)]);
      return c.transport.stats().framesRejected > 0;
    });
    expect(c.received).toEqual([]);
    expect(b.received).toEqual([]);
  });
});

describe('grpc transport: failures', () => {
  it('reconnects to a peer restarted on the same port and delivers later frames', async () => {
    const [a, b] = await Promise.all([cluster.start('a'), cluster.start('b')]);
    connect(a, b);
    await sendUntil(
      'the first stream',
      () => a.transport.send('b', [heartbeat('a', 'b', 0)]),
      () => b.received.length > 0,
    );
    const port = b.transport.port();
    await b.transport.stop();
    await waitFor('a to notice b is gone', () => a.linkErrors.some((entry) => entry.peer === 'b'));
    expect(a.transport.drainUnreachable()).toContain('b');

    const restarted = await cluster.start('b', { clusterSecret: SECRET, listenPort: port });
    await sendUntil(
      'delivery to the restarted peer',
      () => a.transport.send('b', [heartbeat('a', 'b', 5, 42)]),
      () => restarted.received.length > 0,
    );
    expect(restarted.received[0]?.batch[0]?.message.commit).toBe(42);
    expect(a.transport.stats().reconnects).toBeGreaterThanOrEqual(1);
  });

  it('redials a backed-off link at once when a frame from that peer arrives', async () => {
    // a's link would wait 20 s before redialing b; b's first frame after its restart must cut that short.
    const a = await cluster.start('a', {
      clusterSecret: SECRET,
      reconnectBackoffMs: { initial: 20_000, max: 20_000 },
    });
    const b = await cluster.start('b');
    connect(a, b);
    await sendUntil(
      'the first stream',
      () => a.transport.send('b', [heartbeat('a', 'b', 0)]),
      () => b.received.length > 0,
    );
    const port = b.transport.port();
    await b.transport.stop();
    await waitFor('a to notice b is gone', () => a.linkErrors.some((entry) => entry.peer === 'b'));

    const restarted = await cluster.start('b', { clusterSecret: SECRET, listenPort: port });
    connect(a, restarted);
    await sendUntil(
      'a frame from the restarted b',
      () => restarted.transport.send('a', [heartbeat('b', 'a', 1)]),
      () => a.received.some((entry) => entry.from === 'b'),
    );
    // Well inside the 20 s backoff: only the nudge can have redialed.
    await sendUntil(
      'delivery to the restarted peer',
      () => a.transport.send('b', [heartbeat('a', 'b', 5, 42)]),
      () => restarted.received.length > 0,
      5_000,
    );
  });

  it('refuses a wrong secret and a missing one: nothing is delivered', async () => {
    const b = await cluster.start('b');
    const wrong = await cluster.start('wrong', { clusterSecret: 'not-the-secret' });
    const missing = await cluster.start('missing', { insecure: true });
    for (const sender of [wrong, missing]) {
      sender.transport.setPeers(new Map([['b', b.address]]));
      await waitFor(`${sender.id} to be refused`, () => {
        sender.transport.send('b', [heartbeat(sender.id, 'b', 0)]);
        return sender.linkErrors.some((entry) => entry.error.code === 16);
      });
    }
    expect(b.transport.stats().callsUnauthenticated).toBeGreaterThanOrEqual(2);
    expect(b.received).toEqual([]);
    expect(b.transport.stats().framesReceived).toBe(0);
  });

  it('drops, counts and reports sends to an unreachable peer and to an unknown one', async () => {
    const a = await cluster.start('a');
    const gone = await cluster.start('gone');
    const deadAddress = gone.address;
    await gone.transport.stop();
    a.transport.setPeers(new Map([['gone', deadAddress]]));
    await waitFor('the dial to fail', () => a.linkErrors.length > 0);
    const before = a.transport.stats();
    a.transport.send('gone', [heartbeat('a', 'gone', 0), heartbeat('a', 'gone', 1)]);
    a.transport.send('stranger', [heartbeat('a', 'stranger', 0)]);
    const after = a.transport.stats();
    expect(after.framesDropped - before.framesDropped).toBe(2);
    expect(after.messagesDropped - before.messagesDropped).toBe(3);
    expect([...a.transport.drainUnreachable()].sort()).toEqual(['gone', 'stranger']);
    expect(a.transport.drainUnreachable()).toEqual([]);
  });

  it('gives up on a dial the peer never answers (a silent socket), dropping what was queued', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const a = await cluster.start('a', { clusterSecret: SECRET, connectTimeoutMs: 200 });
      a.transport.setPeers(new Map([['mute', `127.0.0.1:${(silent.address() as AddressInfo).port}`]]));
      a.transport.send('mute', [heartbeat('a', 'mute', 0)]);
      await waitFor('the dial to time out', () => a.linkErrors.some((entry) => entry.error.code === 4));
      expect(a.transport.stats().framesDropped).toBeGreaterThanOrEqual(1);
      expect(a.transport.drainUnreachable()).toContain('mute');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('bounds the queue of a link that is still connecting', async () => {
    const a = await cluster.start('a', { clusterSecret: SECRET, sendQueueFramesMax: 2 });
    const b = await cluster.start('b');
    a.transport.setPeers(new Map([['b', b.address]]));
    // The dial has not completed within this synchronous run: two frames queue, three are dropped.
    for (let group = 0; group < 5; group++) a.transport.send('b', [heartbeat('a', 'b', group)]);
    expect(a.transport.stats().framesDropped).toBe(3);
    await waitFor('the queued frames', () => b.received.length >= 2);
    expect(b.received.map((entry) => entry.batch[0]?.group)).toEqual([0, 1]);
  });

  it('requires a secret unless insecure is explicit, and validates limits', () => {
    expect(() => createGrpcTransport({ nodeId: 'x' })).toThrow(/clusterSecret/);
    expect(() => createGrpcTransport({ nodeId: 'x', clusterSecret: '' })).toThrow(/empty/);
    expect(() => createGrpcTransport({ nodeId: 'x', clusterSecret: 's', frameBytesMax: 0 })).toThrow(
      /frameBytesMax/,
    );
    expect(() => createGrpcTransport({ nodeId: 'x', insecure: true })).not.toThrow();
  });

  it('ignores sends after stop without throwing', async () => {
    const [a, b] = await Promise.all([cluster.start('a'), cluster.start('b')]);
    connect(a, b);
    await a.transport.stop();
    expect(() => a.transport.send('b', [heartbeat('a', 'b', 0)])).not.toThrow();
    expect(a.transport.stats().framesDropped).toBe(1);
  });
});
