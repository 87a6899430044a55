// The archiver in a real three-node cluster (processes on 127.0.0.1) against a real PostgreSQL:
// the leader of a busy group is SIGKILLed while batches are being written and acknowledged, writes
// go on through the survivors, the node comes back; Postgres then holds every message exactly once
// (no duplicate, no gap), and the export through any node, stitched across the trim point, is the
// whole history. A fourth node joins, and reads through it of groups it does not host come back
// from a hosting node the same way; so does a live stream through it (pulled from a hosting peer)
// from cursor 0, and rows pruned from the archive are one `gap` frame on that path.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Level } from 'level';
import { votersFor } from '../../src/cluster/placement/placement.js';
import { groupOf } from '../../src/context/routing.js';
import { storeDirName } from '../../src/node/node.js';
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
import { StreamClient, type Frame } from '../stream/stream-client.js';
import { versionProblems } from '../stream/version-checker.js';
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
    // A short in-memory log: a replica that joins later is rebuilt from a snapshot.
    FASTPACA_RAFT_LOG_RETAIN_ENTRIES: '20',
  });
  for (const node of cluster.nodes) node.start();
  await waitReady(cluster.nodes, 60_000);
}, 180_000);

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
    const path = `/v1/contexts/${id}/messages?from_seq=${from}&limit=${pageSize}`;
    let answer = await call(node, 'GET', path);
    // A 503 says "retry shortly" (replicas are still moving onto a joining node): clients retry it.
    for (let retry = 0; answer.status === 503 && retry < 50; retry++) {
      await sleep(200);
      answer = await call(node, 'GET', path);
    }
    if (answer.status !== 200)
      throw new Error(
        `export of ${id} via ${node.name}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`,
      );
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

const messageIds = (frames: readonly Frame[]): string[] =>
  frames.filter((frame) => frame.type === 'message').map((frame) => (frame.message as { id: string }).id);

describe('archiver in a three-node cluster', () => {
  it('SIGKILL of a leader mid-batch: every message in Postgres exactly once, no gap', async () => {
    const first = cluster.nodes[0] as ClusterNode;
    for (const id of contextIds) {
      // Leadership may still be settling right after start-up: a 503 is retried.
      await eventually(`${id} created`, 30_000, async () => {
        const created = await call(first, 'PUT', `/v1/contexts/${id}`, {
          token_budget: 10,
          policy: { strategy: 'last_n', config: { limit: 2 } },
        });
        return created.status === 201 || created.status === 200;
      });
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
    // Writes fail over to the survivors; the node comes back while they go on (restarted soon, so
    // its ports are not free for long on a shared machine).
    await sleep(2_000);
    leader.start();
    await Promise.all(writers);
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

  it('a joining node is rebuilt with the hot tail only, and reads through it, hosted or not, are the whole history', async () => {
    const fourth = await cluster.addNode('node-4');
    fourth.start();
    await waitReady([fourth], 60_000);
    const members = ['node-1', 'node-2', 'node-3', 'node-4'];
    const hostedBy4 = (id: string) => votersFor(groupOf(id, 256), members).includes('node-4');
    const candidates = contextIds.filter(hostedBy4);
    const notHosted = contextIds.find((id) => !hostedBy4(id));
    if (candidates.length === 0 || notHosted === undefined) throw new Error('placement left no case to test');

    // Wait for one of the groups placement gives node-4 to be moved there (learner caught up by a
    // snapshot, promoted); replicas move a few groups at a time, so take whichever comes first.
    let hosted: string | undefined;
    await eventually(
      'node-4 holds a voter replica of one of the contexts placed on it',
      200_000,
      async () => {
        const status = await clusterStatus(fourth);
        hosted = candidates.find((id) => {
          const view = status.groups.find((g) => g.group === groupOf(id, 256));
          return view !== undefined && view.voters.includes('node-4') && (view.learners ?? []).length === 0;
        });
        return hosted !== undefined;
      },
    );
    if (hosted === undefined) throw new Error('unreachable');
    for (const id of [hosted, notHosted]) {
      const rows = await pg.sql<
        { id: string }[]
      >`SELECT id FROM messages WHERE context_id = ${id} ORDER BY seq`;
      for (const pageSize of [4, 1000]) {
        expect((await exportAll(fourth, id, pageSize)).map((m) => m.id)).toEqual(rows.map((row) => row.id));
      }
      let tailAnswer = await call(fourth, 'GET', `/v1/contexts/${id}/tail?limit=12&offset=50`);
      for (let retry = 0; tailAnswer.status === 503 && retry < 50; retry++) {
        await sleep(200);
        tailAnswer = await call(fourth, 'GET', `/v1/contexts/${id}/tail?limit=12&offset=50`);
      }
      expect(tailAnswer.status).toBe(200);
      const tail = tailAnswer.body as { messages: Message[] };
      expect(tail.messages.map((m) => m.id)).toEqual(rows.slice(0, 10).map((row) => row.id));
    }

    // A live stream through node-4 of the context it does not host is pulled from a hosting peer:
    // from cursor 0 it replays the archived history from Postgres, whole and without a gap.
    const notHostedIds = (
      await pg.sql<{ id: string }[]>`SELECT id FROM messages WHERE context_id = ${notHosted} ORDER BY seq`
    ).map((row) => row.id);
    const whole = await StreamClient.connect(fourth.base, notHosted, { cursor: 0 });
    await whole.untilVersion(perContext, 60_000);
    expect(whole.frames.filter((frame) => frame.type === 'gap')).toEqual([]);
    expect(versionProblems(whole.frames, 0, perContext)).toEqual([]);
    expect(messageIds(whole.frames)).toEqual(notHostedIds);
    whole.close();
    // Rows pruned from the archive (a retention job there) are one gap frame on that path, with
    // nothing of the versions it skips; the stream goes on from `actual`. (Versions are seqs here.)
    await pg.sql`DELETE FROM messages WHERE context_id = ${notHosted} AND seq BETWEEN 10 AND 20`;
    const pruned = await StreamClient.connect(fourth.base, notHosted, { cursor: 5 });
    await pruned.untilVersion(perContext, 60_000);
    const gapAt = pruned.frames.findIndex((frame) => frame.type === 'gap');
    expect(pruned.frames[gapAt]).toEqual({ type: 'gap', expected: 10, actual: 21 });
    expect(pruned.frames.filter((frame) => frame.type === 'gap')).toHaveLength(1);
    expect(versionProblems(pruned.frames.slice(0, gapAt), 5, 9)).toEqual([]);
    expect(versionProblems(pruned.frames.slice(gapAt + 1), 20, perContext)).toEqual([]);
    expect(messageIds(pruned.frames)).toEqual([...notHostedIds.slice(5, 9), ...notHostedIds.slice(20)]);
    pruned.close();

    // Its store holds the hosted context's hot tail only: the snapshot carried no trimmed message.
    const metrics = await (await fetch(`${fourth.base}/metrics`)).text();
    expect(metrics).toMatch(/fastpaca_raft_snapshots_received_total\{[^}]*\} [1-9]/);
    await fourth.kill();
    const db = new Level<Uint8Array, Uint8Array>(join(fourth.dataDir, storeDirName), {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    try {
      const group = groupOf(hosted, 256);
      const id = Buffer.from(hosted, 'utf8');
      // [0x80][group u16][0x01] + the state machine's message key [0x02][idLen u16][id][seq u64].
      const prefix = Buffer.concat([
        Buffer.from([0x80, group >> 8, group & 0xff, 0x01, 0x02, id.length >> 8, id.length & 0xff]),
        id,
      ]);
      const seqs: number[] = [];
      for await (const key of db.keys({ gte: prefix, lt: Buffer.concat([prefix, Buffer.alloc(8, 0xff)]) })) {
        seqs.push(Buffer.from(key).readUInt32BE(key.length - 4));
      }
      expect(seqs).toEqual(Array.from({ length: tailKeep }, (_, i) => perContext - tailKeep + 1 + i));
    } finally {
      await db.close();
    }
  }, 300_000);
});
