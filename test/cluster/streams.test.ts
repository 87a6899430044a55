// Live streams on real clusters (processes, SIGKILL). Three nodes: a subscriber connected to one node
// while writers append through the others; that node is SIGKILLed; the subscriber reconnects to
// another node with its cursor and continues exactly (no gap, no duplicate, every frame a committed
// message as the export shows it). Four nodes: a subscriber connected to a node that holds no
// replica of the context's group receives the stream through a hosting peer, also while one of
// the hosting nodes is SIGKILLed, and a cursor beyond the context's history gets a `reset` frame
// there and the whole history from version 1. (The `gap` frame on that path, and replay of archived
// history through it, are in test/archiver/archive-cluster.test.ts, which has the archive.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { votersFor } from '../../src/cluster/placement/placement.js';
import { groupOf } from '../../src/context/routing.js';
import { refusal, StreamClient } from '../stream/stream-client.js';
import { versionProblems } from '../stream/version-checker.js';
import {
  call,
  clusterStatus,
  createCluster,
  eventually,
  exportMessages,
  killAll,
  sleep,
  waitReady,
  withNodeLogs,
  type ClusterNode,
  type TestCluster,
} from './cluster-harness.js';

const GROUPS = 256;

/** Appends `count` messages with unique ids through `nodes` in turn, retrying each until acked. */
const appendAll = async (
  nodes: () => readonly ClusterNode[],
  contextId: string,
  count: number,
  tag: string,
): Promise<void> => {
  for (let n = 0; n < count; n++) {
    const body = {
      message: { role: 'user', parts: [{ type: 'text', text: `${tag} ${n}` }], id: `${tag}-${n}` },
    };
    const deadline = Date.now() + 20_000;
    for (let attempt = 0; ; attempt++) {
      const live = nodes();
      const node = live[(n + attempt) % live.length];
      if (node === undefined) throw new Error('no live node');
      const answer = await call(node, 'POST', `/v1/contexts/${contextId}/messages`, body, 5_000);
      if (answer.status === 201 || answer.status === 200) break;
      if (Date.now() > deadline) throw new Error(`append ${n} not acknowledged: ${answer.status}`);
      await sleep(50);
    }
  }
};

/** Checks the frames against the committed history: same ids at the same seqs, versions == seqs. */
const expectCommitted = async (
  node: ClusterNode,
  contextId: string,
  frames: readonly { type: string; seq?: number; message?: unknown }[],
): Promise<void> => {
  const history = await exportMessages(node, contextId);
  const bySeq = new Map(history.map((message) => [message.seq, message.id]));
  for (const frame of frames.filter((f) => f.type === 'message')) {
    expect((frame.message as { id: string }).id).toBe(bySeq.get(frame.seq ?? -1));
  }
};

describe('live streams on a three-node cluster', () => {
  let cluster: TestCluster;
  let nodes: readonly ClusterNode[];

  beforeAll(async () => {
    cluster = await createCluster();
    nodes = cluster.nodes;
    for (const node of nodes) node.start();
    await waitReady(nodes, 30_000);
  }, 60_000);

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  it('after a SIGKILL of its node, a subscriber reconnects elsewhere with its cursor and continues exactly', async () => {
    const id = 'stream-failover';
    const [first, second, third] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    expect((await call(second, 'PUT', `/v1/contexts/${id}`, { token_budget: 1_000_000 })).status).toBe(201);
    const before = await StreamClient.connect(first.base, id);
    const writing = appendAll(() => nodes.filter((node) => node !== first && node.alive()), id, 120, 'w');
    await withNodeLogs(nodes, () => before.untilVersion(30, 20_000));
    await first.kill();
    const closed = await before.closed;
    expect(closed.code).toBe(1006);
    const cursor = before.lastVersion;
    const after = await StreamClient.connect(third.base, id, { cursor });
    await writing;
    const last = ((await call(second, 'GET', `/v1/contexts/${id}`)).body as { version: number }).version;
    expect(last).toBe(120);
    // Here and above, a fresh stream has been seen closed 1006 with 0 frames (rarely, under load):
    // keep what the live nodes logged.
    await withNodeLogs([second, third], () => after.untilVersion(last, 20_000));
    expect(versionProblems(before.frames, 0, cursor)).toEqual([]);
    expect(versionProblems(after.frames, cursor, last)).toEqual([]);
    await expectCommitted(second, id, [...before.frames, ...after.frames]);
    after.close();
  }, 90_000);
});

describe('live streams through a node without a replica (four nodes)', () => {
  let cluster: TestCluster;
  let nodes: ClusterNode[] = [];
  let names: string[] = [];

  beforeAll(async () => {
    cluster = await createCluster();
    for (const node of cluster.nodes) node.start();
    const fourth = await cluster.addNode('node-4');
    fourth.start();
    nodes = [...cluster.nodes, fourth];
    names = nodes.map((node) => node.name).sort();
    await waitReady(nodes, 30_000);
    await eventually('each node holds just its placed groups', 40_000, async () => {
      const statuses = await Promise.all(nodes.map((node) => clusterStatus(node)));
      return statuses.every((status) => {
        const placed = Array.from({ length: GROUPS }, (_, group) => group).filter((group) =>
          votersFor(group, names).includes(status.node_id),
        );
        const held = new Set(status.groups.map((view) => view.group));
        return held.size === placed.length && placed.every((group) => held.has(group));
      });
    });
    await waitReady(nodes, 10_000);
  }, 120_000);

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  it('streams replay and live events through a hosting peer, also across the SIGKILL of a hosting node', async () => {
    const away = nodes[0] as ClusterNode;
    let id = '';
    for (let i = 0; id === '' && i < 10_000; i++) {
      const candidate = `remote-stream-${i}`;
      if (!votersFor(groupOf(candidate, GROUPS), names).includes(away.name)) id = candidate;
    }
    const hosts = votersFor(groupOf(id, GROUPS), names).map((name) =>
      nodes.find((node) => node.name === name),
    );
    // Pulls go to the first replica placement names (remote-service.ts tries them in order): that
    // one is killed, so the pulls must move to another replica and resume exactly.
    const [victim, home] = hosts as [ClusterNode, ClusterNode, ClusterNode];
    expect((await call(home, 'PUT', `/v1/contexts/${id}`, { token_budget: 1_000_000 })).status).toBe(201);
    await appendAll(() => [home], id, 20, 'before');
    // 404 through the node without a replica, as through a hosting one.
    expect((await refusal(StreamClient.connect(away.base, 'no-such-context'))).status).toBe(404);
    const client = await StreamClient.connect(away.base, id, { cursor: 5 });
    await client.untilVersion(20, 20_000);
    const writing = appendAll(
      () =>
        hosts.filter((node): node is ClusterNode => node !== undefined && node !== victim && node.alive()),
      id,
      60,
      'live',
    );
    await client.untilVersion(40, 30_000);
    await victim.kill();
    await writing;
    const last = ((await call(home, 'GET', `/v1/contexts/${id}`)).body as { version: number }).version;
    expect(last).toBe(80);
    await client.untilVersion(last, 40_000);
    expect(versionProblems(client.frames, 5, last)).toEqual([]);
    await expectCommitted(home, id, client.frames);
    client.close();
  }, 150_000);

  it('sends reset and then the history from version 1 for a cursor beyond it, through a hosting peer', async () => {
    const away = nodes[0] as ClusterNode;
    let id = '';
    for (let i = 0; id === '' && i < 10_000; i++) {
      const candidate = `remote-reset-${i}`;
      if (!votersFor(groupOf(candidate, GROUPS), names).includes(away.name)) id = candidate;
    }
    const home = nodes.find(
      (node) => votersFor(groupOf(id, GROUPS), names).includes(node.name) && node.alive(),
    );
    if (home === undefined) throw new Error('no live hosting node');
    expect((await call(home, 'PUT', `/v1/contexts/${id}`, { token_budget: 1_000_000 })).status).toBe(201);
    await appendAll(() => [home], id, 12, 'reset');
    const client = await StreamClient.connect(away.base, id, { cursor: 500 });
    await client.untilVersion(12, 20_000);
    expect(client.frames[0]).toEqual({ type: 'reset', version: 0 });
    // After the reset (whose version 0 is no version of the history): 1..12 exactly.
    const afterReset = () => client.frames.slice(1);
    expect(afterReset().filter((frame) => frame.type === 'reset')).toEqual([]);
    expect(versionProblems(afterReset(), 0, 12)).toEqual([]);
    // Live after the reset, still through the peer.
    await appendAll(() => [home], id, 3, 'reset-live');
    await client.untilVersion(15, 20_000);
    expect(versionProblems(afterReset(), 0, 15)).toEqual([]);
    await expectCommitted(home, id, client.frames);
    client.close();
  }, 60_000);
});
