// Growth and shrink of a real cluster under load. Three nodes form; writers append continuously to
// many contexts through every live node (each message with a unique id, so a retry is idempotent).
// A fourth node started with the same seed (which does not name it) must join rather than form a
// cluster of its own, and the groups' leaders must move replicas onto it until every group has the
// three voters placement computes over the four members, the new node holding its share. Then the
// real `fastpaca cluster remove` drains one of the original nodes: it exits 0 only once no group
// counts that node any more. Finally every acknowledged append is present exactly once, with
// contiguous seqs, on every remaining node.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { votersFor } from '../../src/cluster/placement/placement.js';
import { removalProgress } from '../../src/cluster/membership/removal-progress.js';
import {
  call,
  clusterSecret,
  clusterStatus,
  createCluster,
  createContexts,
  drainNode,
  eventually,
  expectNoAppendLostOrDuplicated,
  killAll,
  runFastpaca,
  sleep,
  waitReady,
  type ClusterNode,
  type GroupView,
  type StatusView,
  type TestCluster,
} from './cluster-harness.js';

const GROUPS = 256;
const CONTEXTS = Array.from({ length: 24 }, (_, i) => `grow-${i}`);
const WRITERS = 4;

interface WriterState {
  stop: boolean;
  readonly acked: Map<string, Set<string>>;
  readonly sent: Map<string, Set<string>>;
  errors: number;
}

/** Per group, the view of the node that leads it (highest term), from every node's status. */
const leaderViews = (statuses: readonly StatusView[]): Map<number, GroupView> => {
  const views = new Map<number, GroupView>();
  for (const status of statuses) {
    for (const view of status.groups) {
      if (view.leader !== status.node_id) continue;
      const current = views.get(view.group);
      if (current === undefined || view.term > current.term) views.set(view.group, view);
    }
  }
  return views;
};

const statusesOf = async (nodes: readonly ClusterNode[]): Promise<StatusView[]> => {
  const answers = await Promise.allSettled(nodes.map((node) => clusterStatus(node)));
  return answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
};

describe('a fourth node joins and a node is removed, under load', () => {
  let cluster: TestCluster;
  let live: ClusterNode[] = [];

  beforeAll(async () => {
    cluster = await createCluster();
    for (const node of cluster.nodes) node.start();
    await waitReady(cluster.nodes, 30_000);
    live = [...cluster.nodes];
    await createContexts(live, CONTEXTS);
  }, 60_000);

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  /** One writer: owns every WRITERS-th context, retries each message (same id) until acked. */
  const runWriter = async (index: number, state: WriterState): Promise<void> => {
    const owned = CONTEXTS.filter((_, i) => i % WRITERS === index);
    let turn = index;
    for (let n = 1; !state.stop; n += 1) {
      for (const contextId of owned) {
        const id = `${contextId}-m${n}`;
        state.sent.get(contextId)?.add(id);
        // Bounded: 300 attempts of at most 10 s each; the test's own deadlines end it sooner.
        for (let attempt = 0; attempt < 300 && !state.stop; attempt += 1) {
          const node = live[turn % live.length];
          turn += 1;
          if (node === undefined) break;
          const answer = await call(node, 'POST', `/v1/contexts/${contextId}/messages`, {
            message: { role: 'user', parts: [{ type: 'text', text: `payload ${id}` }], id },
          });
          if (answer.status === 201 || answer.status === 200) {
            state.acked.get(contextId)?.add(id);
            break;
          }
          state.errors += 1;
          if (answer.status !== 503 && answer.status !== 0) {
            throw new Error(
              `append ${id} via ${node.name}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`,
            );
          }
          await sleep(20);
        }
      }
    }
  };

  it('moves groups onto the new node, drains a removed one, and loses no append', async () => {
    const state: WriterState = {
      stop: false,
      acked: new Map(CONTEXTS.map((id) => [id, new Set<string>()])),
      sent: new Map(CONTEXTS.map((id) => [id, new Set<string>()])),
      errors: 0,
    };
    const writers = Array.from({ length: WRITERS }, (_, i) => runWriter(i, state));
    const startedAt = Date.now();
    let fourth: ClusterNode | undefined;
    try {
      await sleep(1_000);
      fourth = await cluster.addNode('node-4');
      fourth.start();
      await waitReady([fourth], 30_000);
      live = [...cluster.nodes, fourth];
      const all = live.map((node) => node.name).sort();
      const all4 = [...live];

      // Every group ends with exactly the voters placement computes over four members.
      let lastReport = '';
      try {
        await eventually('every group placed over four nodes', 60_000, async () => {
          const views = leaderViews(await statusesOf(all4));
          let placed = 0;
          for (let group = 0; group < GROUPS; group += 1) {
            const view = views.get(group);
            if (view === undefined) continue;
            if ((view.learners ?? []).length > 0) continue;
            if (JSON.stringify([...view.voters].sort()) === JSON.stringify(votersFor(group, all)))
              placed += 1;
          }
          lastReport = `${placed}/${GROUPS} groups placed`;
          return placed === GROUPS;
        });
      } catch (error) {
        throw new Error(`${(error as Error).message} (${lastReport})\n${fourth.output().slice(-3_000)}`);
      }
      const share = Array.from({ length: GROUPS }, (_, group) => group).filter((group) =>
        votersFor(group, all).includes('node-4'),
      ).length;
      // About 3/4 of the groups; rendezvous hashing gives the exact share.
      expect(share).toBeGreaterThan(GROUPS * 0.6);
      const fourthStatus = await clusterStatus(fourth);
      const votingOnFourth = fourthStatus.groups.filter((view) => view.voters.includes('node-4')).length;
      expect(votingOnFourth).toBeGreaterThanOrEqual(share);
      console.log(`node-4 joined and holds ${share} groups ${Date.now() - startedAt} ms after the start`);
      // The replicas that moved away are deleted where they were: each node keeps just its share.
      await eventually('moved replicas deleted', 30_000, async () => {
        const statuses = await statusesOf(all4);
        return (
          statuses.length === all4.length &&
          statuses.every(
            (status) =>
              status.groups.length ===
              Array.from({ length: GROUPS }, (_, group) => group).filter((group) =>
                votersFor(group, all).includes(status.node_id),
              ).length,
          )
        );
      });

      // Drain node-1 with the real CLI, asking another node.
      const [removed, asked] = cluster.nodes;
      if (removed === undefined || asked === undefined) throw new Error('nodes missing');
      const removal = await drainNode(removed.name, asked);
      expect(removal.stderr, removal.stdout).toBe('');
      expect(removal.code).toBe(0);
      expect(removal.stdout).toContain(`${removed.name} removed`);
      // The writers stop using the drained node; it still runs, but nothing counts it.
      live = all4.filter((node) => node !== removed);
      const remaining = live.map((node) => node.name).sort();
      const progress = removalProgress(await statusesOf(all4), removed.name);
      expect(progress.hosting).toEqual([]);
      expect(progress.unknown).toEqual([]);
      expect(progress.metaHosting).toBe(false);
      const views = leaderViews(await statusesOf(live));
      for (let group = 0; group < GROUPS; group += 1) {
        expect([...(views.get(group)?.voters ?? [])].sort(), `group ${group}`).toEqual(remaining);
      }
      // The drained node deletes everything it held, the member list included.
      let removedView = '';
      try {
        await eventually('the removed node deleted its replicas', 30_000, async () => {
          const status = await clusterStatus(removed);
          removedView = JSON.stringify({
            groups: status.groups.slice(0, 3),
            count: status.groups.length,
            meta: status.meta,
            members: status.members,
          });
          return status.groups.length === 0 && status.meta === undefined;
        });
      } catch (error) {
        throw new Error(`${(error as Error).message}: ${removedView}\n${removed.output().slice(-3_000)}`);
      }
      const listed = (await clusterStatus(asked)).members.find((member) => member.node_id === removed.name);
      expect(listed?.state).toBe('removed');
      // It learns so itself and stops asking to be a member (its old directory would be refused).
      await eventually('the removed node says it was removed', 20_000, () =>
        Promise.resolve(removed.output().includes('this node was removed from the cluster')),
      );
      console.log(`node-1 removed ${Date.now() - startedAt} ms after the start`);
      // Replicas a node lost in a move do not keep it from being ready.
      await waitReady(live, 15_000);

      // Three active nodes are left: draining another would leave groups short of replicas.
      const refused = await runFastpaca(
        [
          'cluster',
          'remove',
          asked.name,
          '--url',
          asked.base,
          '--cluster-secret',
          clusterSecret,
          '--timeout',
          '10000',
        ],
        20_000,
      );
      expect(refused.code, refused.stdout).toBe(1);
      expect(refused.stderr).toContain('fewer than the 3 replicas');
      const unknown = await runFastpaca(
        ['cluster', 'remove', 'node-9', '--url', asked.base, '--cluster-secret', clusterSecret],
        20_000,
      );
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('not a member');
      // Removing a node that is removed already is done at once.
      const again = await runFastpaca(
        ['cluster', 'remove', removed.name, '--url', asked.base, '--cluster-secret', clusterSecret],
        20_000,
      );
      expect(again.code, again.stderr).toBe(0);
      const usage = await runFastpaca(['cluster', 'remove'], 20_000);
      expect(usage.code).toBe(2);
      await sleep(500);
    } finally {
      state.stop = true;
      await Promise.all(writers);
    }

    const ackedTotal = [...state.acked.values()].reduce((sum, ids) => sum + ids.size, 0);
    console.log(`acknowledged ${ackedTotal} appends (${state.errors} retried attempts)`);
    expect(ackedTotal).toBeGreaterThan(100);

    await expectNoAppendLostOrDuplicated(live, CONTEXTS, state);
  }, 170_000);
});
