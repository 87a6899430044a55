// Any node serves any request, also for groups it holds no replica of. Four real nodes: after the
// fourth joins and placement settles, each node hosts only the groups placement gives it (about
// three quarters). For contexts whose group a node does NOT host, every context operation through
// that node must answer exactly as through a node that hosts the group: the same status and the
// same body, errors (404, 400, 409) included.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { votersFor } from '../../src/cluster/placement/placement.js';
import { groupOf } from '../../src/context/routing.js';
import {
  call,
  clusterStatus,
  createCluster,
  eventually,
  killAll,
  waitReady,
  type ClusterNode,
  type HttpAnswer,
  type TestCluster,
} from './cluster-harness.js';

const GROUPS = 256;

const message = (text: string, id: string): unknown => ({
  message: { role: 'user', parts: [{ type: 'text', text }], id },
});

/** A context id of `prefix` whose group placement keeps off `node` (among `all`). */
const idNotOn = (node: string, all: readonly string[], prefix: string): string => {
  for (let i = 0; i < 10_000; i += 1) {
    const id = `${prefix}-${i}`;
    if (!votersFor(groupOf(id, GROUPS), all).includes(node)) return id;
  }
  throw new Error(`no id off ${node}`);
};

describe('any node serves any context, also without a replica of its group', () => {
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
    // Placement over four members has settled: every node holds exactly its share of the groups.
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
  }, 90_000);

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  it('answers every operation through a non-hosting node as a hosting node does', async () => {
    for (const away of nodes) {
      const id = idNotOn(away.name, names, `remote-${away.name}`);
      const hostName = votersFor(groupOf(id, GROUPS), names)[0];
      const home = nodes.find((node) => node.name === hostName) as ClusterNode;
      const path = `/v1/contexts/${encodeURIComponent(id)}`;
      // Both answer the same request; the two answers must be identical.
      const same = async (method: string, suffix: string, body?: unknown): Promise<HttpAnswer> => {
        const viaAway = await call(away, method, `${path}${suffix}`, body);
        const viaHome = await call(home, method, `${path}${suffix}`, body);
        expect(viaAway, `${method} ${suffix} via ${away.name} vs ${home.name}`).toEqual(viaHome);
        return viaAway;
      };

      // Missing context: the same 404 body for every read.
      expect((await same('GET', '')).status).toBe(404);
      expect((await same('GET', '/messages?from_seq=0&limit=10')).status).toBe(404);
      expect((await same('GET', '/context')).status).toBe(404);
      expect(await same('GET', '/tail?limit=5')).toEqual({ status: 200, body: { messages: [] } });
      // A PUT creating without a budget is refused by the hosting node's service.
      expect((await same('PUT', '', { metadata: { a: 1 } })).status).toBe(400);

      // Created through the node without a replica; read back identically everywhere.
      const created = await call(away, 'PUT', path, { token_budget: 10_000, metadata: { owner: 'away' } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const read = await same('GET', '');
      expect(read).toEqual({ status: 200, body: created.body });
      // An unchanged upsert is answered from the read (never proposed): 200 and the same body.
      expect(await same('PUT', '', { token_budget: 10_000 })).toEqual({ status: 200, body: created.body });

      for (let n = 1; n <= 3; n += 1) {
        const appended = await call(away, 'POST', `${path}/messages`, message(`hello ${n}`, `m${n}`));
        expect(appended.status, JSON.stringify(appended.body)).toBe(201);
      }
      const page = await same('GET', '/messages?from_seq=0&limit=10');
      expect((page.body as { messages: unknown[] }).messages).toHaveLength(3);
      expect((await same('GET', '/tail?limit=2&offset=1')).status).toBe(200);
      expect((await same('GET', '/context')).status).toBe(200);
      expect((await same('GET', '/context?budget_tokens=5')).status).toBe(200);
      // Errors raised by the hosting node's service keep their code and sentence.
      expect((await same('GET', '/context?if_version=999')).status).toBe(409);
      expect((await same('GET', '/tail?limit=0')).status).toBe(400);

      const patched = await call(away, 'PATCH', `${path}/metadata`, { metadata: { tag: 'x' } });
      expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      expect(await same('GET', '')).toEqual({ status: 200, body: patched.body });
      // A PUT that changes something, through the node without a replica (read, then propose).
      const updated = await call(away, 'PUT', path, { token_budget: 20_000 });
      expect(updated.status, JSON.stringify(updated.body)).toBe(200);
      expect((updated.body as { token_budget: number }).token_budget).toBe(20_000);
      expect(await same('GET', '')).toEqual({ status: 200, body: updated.body });
    }
  }, 60_000);
});
