// A node that comes back under a member's name with an empty data directory (a new volume, say) has
// forgotten what its replicas stored and voted: letting it answer as that member could lose
// acknowledged appends or elect two leaders in one term. Four real nodes form; node-4 is SIGKILLed,
// its data directory deleted, and it is started again under the same name. The cluster must refuse
// it (not ready, no replica taken, the reason in its log) while the other three keep taking writes.
// `fastpaca cluster remove node-4` then drains the old node-4's replicas, after which the waiting
// new node-4 joins as a new member and gets its share of groups back. Every acknowledged append is
// present exactly once, with contiguous seqs, on all four nodes at the end.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { votersFor } from '../../src/cluster/placement/placement.js';
import {
  call,
  clusterStatus,
  createCluster,
  createContexts,
  drainNode,
  eventually,
  expectNoAppendLostOrDuplicated,
  isReady,
  killAll,
  removeDir,
  sleep,
  waitReady,
  type ClusterNode,
  type TestCluster,
} from './cluster-harness.js';

const GROUPS = 256;
const CONTEXTS = Array.from({ length: 8 }, (_, i) => `replaced-${i}`);

describe('a node whose data directory was replaced', () => {
  let cluster: TestCluster;
  const sent = new Map(CONTEXTS.map((id) => [id, new Set<string>()]));
  const acked = new Map(CONTEXTS.map((id) => [id, new Set<string>()]));
  let appended = 0;

  beforeAll(async () => {
    cluster = await createCluster(4);
    for (const node of cluster.nodes) node.start();
    await waitReady(cluster.nodes, 60_000);
    // Ready nodes that formed the cluster may still be adding themselves to the member list.
    await eventually('all four listed as active members', 30_000, async () => {
      const { members } = await clusterStatus(cluster.nodes[0] as ClusterNode);
      return members.filter((member) => member.state === 'active').length === 4;
    });
    await createContexts(cluster.nodes.slice(0, 3), CONTEXTS);
  }, 90_000);

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  /** One message to every context through `nodes` in turn, each retried (same id) until acked. */
  const appendRound = async (nodes: readonly ClusterNode[]): Promise<void> => {
    appended += 1;
    for (const [i, contextId] of CONTEXTS.entries()) {
      const id = `${contextId}-m${appended}`;
      sent.get(contextId)?.add(id);
      let last = '';
      // Bounded: 100 attempts; a leader change answers 503 for a moment.
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const node = nodes[(i + attempt) % nodes.length] as ClusterNode;
        const answer = await call(node, 'POST', `/v1/contexts/${contextId}/messages`, {
          message: { role: 'user', parts: [{ type: 'text', text: `payload ${id}` }], id },
        });
        if (answer.status === 201 || answer.status === 200) {
          acked.get(contextId)?.add(id);
          break;
        }
        last = `${node.name}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`;
        expect([0, 503], last).toContain(answer.status);
        await sleep(50);
      }
      expect(acked.get(contextId)?.has(id), `append ${id} never acknowledged; last ${last}`).toBe(true);
    }
  };

  it('is refused until removed, then joins as a new node, and no append is lost', async () => {
    const [first, second, third, fourth] = cluster.nodes;
    if (first === undefined || second === undefined || third === undefined || fourth === undefined)
      throw new Error('nodes missing');
    const others = [first, second, third];
    await appendRound(cluster.nodes);
    const before = (await clusterStatus(first)).members.find((member) => member.node_id === 'node-4');
    expect(before?.state).toBe('active');

    await fourth.kill();
    removeDir(fourth.dataDir);
    fourth.start();
    await eventually('node-4 told why it is refused', 30_000, () =>
      Promise.resolve(fourth.output().includes('data directory was replaced')),
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${fourth.output().slice(-3_000)}`);
    });
    // Refused: not ready, not joined, and no replica taken, while the others keep taking writes.
    await appendRound(others);
    expect(await isReady(fourth)).toBe(false);
    const refused = await clusterStatus(fourth);
    expect(refused.joined).toBe(false);
    expect(refused.groups).toEqual([]);
    expect(refused.meta).toBeUndefined();
    expect(fourth.output()).toContain('fastpaca cluster remove node-4');

    const removalStart = Date.now();
    const removal = await drainNode('node-4', first);
    console.log(`removal took ${Date.now() - removalStart} ms:\n${removal.stdout}`);
    const membersAfter = JSON.stringify((await clusterStatus(first)).members);
    expect(removal.stderr, `${removal.stdout}\nmembers: ${membersAfter}`).toBe('');
    expect(removal.code).toBe(0);
    await appendRound(others);

    // The waiting node-4 is now a stranger with a fresh directory: it joins and takes its share.
    try {
      await waitReady([fourth], 30_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${fourth.output().slice(-3_000)}`);
    }
    const all = cluster.nodes.map((node) => node.name).sort();
    const share = Array.from({ length: GROUPS }, (_, group) => group).filter((group) =>
      votersFor(group, all).includes('node-4'),
    ).length;
    let hosted = 0;
    await eventually('node-4 votes in its share of groups again', 90_000, async () => {
      const status = await clusterStatus(fourth);
      hosted = status.groups.filter((view) => view.voters.includes('node-4')).length;
      return status.joined && hosted >= share;
    }).catch((error: unknown) => {
      throw new Error(`${(error as Error).message} (${hosted}/${share})\n${fourth.output().slice(-3_000)}`);
    });
    const listed = (await clusterStatus(first)).members.find((member) => member.node_id === 'node-4');
    expect(listed?.state).toBe('active');
    await appendRound(cluster.nodes);

    await expectNoAppendLostOrDuplicated(cluster.nodes, CONTEXTS, { sent, acked });
  }, 240_000);
});
