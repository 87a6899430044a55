// Three real nodes started in a random order with random delays between them form exactly one
// cluster: every node becomes ready, every node reports the same three voters for all 256 groups,
// all nodes agree on each group's leader, and leadership ends up spread evenly (±10 %). Then any
// node serves any request: appends through each node in turn give one contiguous history, the same
// on every node, and a read on one node right after a write through another sees the write.
// The internal endpoints refuse callers without the cluster secret.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  call,
  clusterSecret,
  clusterStatus,
  createCluster,
  exportMessages,
  killAll,
  sleep,
  waitLeadersSettled,
  waitReady,
  type ClusterNode,
  type TestCluster,
} from './cluster-harness.js';

const GROUPS = 256;

describe('three-node cluster formation', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await createCluster();
    // One random start order and delays (fast-check: reproducible from the printed seed).
    const [plan] = fc.sample(
      fc.record({
        order: fc.shuffledSubarray([0, 1, 2], { minLength: 3, maxLength: 3 }),
        delaysMs: fc.array(fc.integer({ min: 0, max: 1_500 }), { minLength: 3, maxLength: 3 }),
      }),
      1,
    );
    if (plan === undefined) throw new Error('no start plan');
    for (const [step, index] of plan.order.entries()) {
      await sleep(plan.delaysMs[step] ?? 0);
      cluster.nodes[index]?.start();
    }
    await waitReady(cluster.nodes, 30_000);
  });

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  it('forms one cluster: the same three voters for every group on every node', async () => {
    const statuses = await Promise.all(cluster.nodes.map((node) => clusterStatus(node)));
    const names = cluster.nodes.map((node) => node.name).sort();
    for (const status of statuses) {
      expect(status.joined).toBe(true);
      expect(status.groups).toHaveLength(GROUPS);
      for (const group of status.groups) expect(group.voters).toEqual(names);
    }
  });

  it('agrees on every leader and spreads leadership within ±10 % of even', async () => {
    await waitLeadersSettled(cluster.nodes, 20_000);
  });

  it('serves any request on any node with one history', async () => {
    const [a, b, c] = cluster.nodes;
    if (a === undefined || b === undefined || c === undefined) throw new Error('three nodes');
    const contexts = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
    for (const [i, id] of contexts.entries()) {
      const created = await call(cluster.nodes[i % 3] ?? a, 'PUT', `/v1/contexts/${id}`, {
        token_budget: 10_000,
      });
      expect(created.status).toBe(201);
    }
    // The same PUT through another node is an unchanged upsert: 200 with the identical view.
    const again = await Promise.all(
      cluster.nodes.map((node) => call(node, 'PUT', '/v1/contexts/alpha', { token_budget: 10_000 })),
    );
    for (const answer of again) {
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(again[0]?.body);
    }

    const rounds = 4;
    for (let round = 0; round < rounds; round += 1) {
      for (const id of contexts) {
        for (const [n, node] of cluster.nodes.entries()) {
          const seq = round * 3 + n + 1;
          const answer = await call(node, 'POST', `/v1/contexts/${id}/messages`, {
            message: { role: 'user', parts: [{ type: 'text', text: `m${seq}` }], id: `${id}-${seq}` },
          });
          expect(answer.status, JSON.stringify(answer.body)).toBe(201);
          expect(answer.body).toMatchObject({ seq, version: seq });
          // Linearizable: the next node's read sees this write at once.
          const next = cluster.nodes[(n + 1) % 3] ?? a;
          const view = await call(next, 'GET', `/v1/contexts/${id}`);
          expect(view.body).toMatchObject({ last_seq: seq, version: seq });
        }
      }
    }

    // A replayed append (same message id) through a different node answers the original seq.
    const replay = await call(b, 'POST', '/v1/contexts/alpha/messages', {
      message: { role: 'user', parts: [{ type: 'text', text: 'm1' }], id: 'alpha-1' },
    });
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ seq: 1 });

    for (const id of contexts) {
      const histories = await Promise.all(cluster.nodes.map((node) => exportMessages(node, id)));
      const expected = Array.from({ length: rounds * 3 }, (_, i) => ({ id: `${id}-${i + 1}`, seq: i + 1 }));
      for (const history of histories) expect(history).toEqual(expected);
      const tails = await Promise.all(
        cluster.nodes.map((node) => call(node, 'GET', `/v1/contexts/${id}/tail`)),
      );
      for (const tail of tails) expect(tail).toEqual(tails[0]);
    }
  });

  it('refuses the internal endpoints without the cluster secret', async () => {
    const node = cluster.nodes[0];
    if (node === undefined) throw new Error('no node');
    for (const path of [
      '/internal/v1/cluster/hello',
      '/internal/v1/cluster/status',
      '/internal/v1/cluster/acknowledged?node_id=node-2',
    ]) {
      const plain = await fetch(`${node.base}${path}`);
      await plain.arrayBuffer();
      expect(plain.status).toBe(401);
      const wrong = await fetch(`${node.base}${path}`, {
        headers: { 'x-fastpaca-cluster-secret': 'not-the-secret-at-all' },
      });
      await wrong.arrayBuffer();
      expect(wrong.status).toBe(401);
    }
  });

  it("answers, for the groups each node leads, what another node acknowledged there (the stale-copy check's question)", async () => {
    const ask = async (node: ClusterNode, query: string) => {
      const response = await fetch(`${node.base}/internal/v1/cluster/acknowledged?${query}`, {
        headers: { 'x-fastpaca-cluster-secret': clusterSecret },
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const first = cluster.nodes[0];
    if (first === undefined) throw new Error('no node');
    expect((await ask(first, 'node_id=')).status).toBe(400);
    expect((await ask(first, `node_id=${'x'.repeat(300)}`)).status).toBe(400);
    let reported = 0;
    for (const node of cluster.nodes) {
      const other = cluster.nodes.find((peer) => peer !== node) as ClusterNode;
      const answer = await ask(node, `node_id=${other.name}`);
      expect(answer.status).toBe(200);
      expect(answer.body['node_id']).toBe(node.name);
      const groups = answer.body['groups'] as Record<string, { match: number; term: number }>;
      const status = await clusterStatus(node);
      const led = new Set(status.groups.filter((g) => g.leader === node.name).map((g) => String(g.group)));
      for (const [group, known] of Object.entries(groups)) {
        // Only groups it leads (the meta group too), each with the leader's term.
        if (group !== String(status.meta?.group)) expect(led.has(group), group).toBe(true);
        expect(Number.isSafeInteger(known.match) && known.match >= 0).toBe(true);
        expect(known.term).toBeGreaterThan(0);
        reported += 1;
      }
    }
    // The writes above went through groups the others lead: their leaders saw them acknowledged.
    expect(reported).toBeGreaterThan(0);
  });

  it('refuses a draining announcement without the secret, or with a malformed node or ttl', async () => {
    const node = cluster.nodes[0];
    if (node === undefined) throw new Error('no node');
    const post = async (query: string, secret = clusterSecret): Promise<number> => {
      const response = await fetch(`${node.base}/internal/v1/cluster/draining?${query}`, {
        method: 'POST',
        headers: { 'x-fastpaca-cluster-secret': secret },
      });
      await response.arrayBuffer();
      return response.status;
    };
    expect(await post('node_id=node-2&ttl_ms=1000', 'not-the-secret-at-all')).toBe(401);
    for (const query of [
      'node_id=node-2',
      'node_id=node-2&ttl_ms=-1',
      'node_id=node-2&ttl_ms=1.5',
      'node_id=node-2&ttl_ms=1e400',
      `node_id=${'x'.repeat(10_000)}&ttl_ms=0`,
      'ttl_ms=0',
    ]) {
      expect(await post(query), query).toBe(400);
    }
    // A well-formed announcement that clears a mark is accepted.
    expect(await post('node_id=node-2&ttl_ms=0')).toBe(200);
  });
});
