// Large writes in a cluster. A request may be as large as the body limit, and in a cluster its log
// entry has to reach the other replicas in one transport frame, after being forwarded to the leader in
// one message. Both used to be capped at 8 MiB: a single 10 MiB append wedged its group for good (the
// leader kept resending an entry no frame could carry, so nothing behind it committed either), and a
// burst of ~1 MiB appends through one node failed with 503 (forwards that arrived together shared one
// message, over the leader's limit). Three real nodes run with a 16 MiB body limit.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  call,
  createCluster,
  createContexts,
  waitLeadersSettled,
  waitReady,
  type ClusterNode,
  type TestCluster,
} from './cluster-harness.js';

const MiB = 1024 * 1024;
const BODY_LIMIT_BYTES = 16 * MiB;

const appendText = (node: ClusterNode, contextId: string, text: string): ReturnType<typeof call> =>
  call(
    node,
    'POST',
    `/v1/contexts/${contextId}/messages`,
    { message: { role: 'user', parts: [{ type: 'text', text }], token_count: 1 } },
    60_000,
  );

interface TailMessage {
  readonly seq: number;
  readonly parts: readonly { readonly text: string }[];
}

describe('large entries in a three-node cluster', () => {
  let cluster: TestCluster;
  let nodes: readonly ClusterNode[];

  beforeAll(async () => {
    // Production Raft timing: with the tests' fast ticks, a few seconds of writing tens of MB on two
    // shared cores can delay heartbeats past an election timeout.
    cluster = await createCluster(3, {
      FASTPACA_BODY_LIMIT_BYTES: String(BODY_LIMIT_BYTES),
      // One tail page must hold four such messages (the default page budget is 16 MiB of them).
      FASTPACA_READ_PAGE_BYTES_MAX: String(64 * MiB),
      // Writing ~50 MB three times over on two shared cores can take seconds; what this test is
      // about fails at once (a message over a peer's limit), not by being slow.
      FASTPACA_RAFT_PROPOSAL_TIMEOUT_MS: '15000',
    });
    nodes = cluster.nodes;
    for (const node of nodes) node.start();
    await waitReady(nodes, 60_000);
    await waitLeadersSettled(nodes, 30_000);
  }, 120_000);

  afterAll(async () => {
    await cluster.destroy();
  });

  it('accepts a burst of ~1 MB appends through one node, most forwarded to other leaders', async () => {
    const ids = Array.from({ length: 48 }, (_, i) => `burst-${i}`);
    await createContexts(nodes, ids);
    const via = nodes[0] as ClusterNode;
    const answers = await Promise.all(
      ids.map((id, i) => appendText(via, id, `${i}`.padEnd(950 * 1024, '.'))),
    );
    for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    for (const node of nodes) {
      for (const id of ids) {
        const context = await call(node, 'GET', `/v1/contexts/${id}`);
        expect(context.body, `${id} on ${node.name}`).toMatchObject({ last_seq: 1 });
      }
    }
  }, 120_000);

  it('replicates a 10 MiB message to every node and keeps its group writable', async () => {
    const id = 'large-message';
    await createContexts(nodes, [id]);
    const large = (n: number): string => `${n}`.padEnd(10 * MiB, 'x');
    for (const [i, node] of nodes.entries()) {
      const answer = await appendText(node, id, large(i));
      expect(answer.status, `through ${node.name}: ${JSON.stringify(answer.body)}`).toBe(201);
      expect(answer.body).toMatchObject({ seq: i + 1 });
    }
    const small = await appendText(nodes[1] as ClusterNode, id, 'after');
    expect(small.status, JSON.stringify(small.body)).toBe(201);
    expect(small.body).toMatchObject({ seq: 4 });
    for (const node of nodes) {
      const tail = await call(node, 'GET', `/v1/contexts/${id}/tail?limit=4`, undefined, 60_000);
      expect(tail.status, `tail on ${node.name}`).toBe(200);
      const messages = (tail.body as { messages: TailMessage[] }).messages;
      expect(messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
      expect(messages.map((m) => m.parts[0]?.text)).toEqual([large(0), large(1), large(2), 'after']);
    }
  }, 120_000);
});
