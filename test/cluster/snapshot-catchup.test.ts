// A restarted node that must catch up by snapshot. Three real nodes run with a tiny Raft log retention,
// so a group's log is compacted after a few dozen entries. Contexts are chosen to fall in distinct
// groups; each gets a few appends through all nodes, then one node is SIGKILLed and every context gets
// several times the retention in further appends: every touched group's leader compacts its log past
// the dead node's last index, so log replication alone can no longer repair it. The node is restarted
// on the same data directory; it must report ready, the surviving nodes must have streamed it snapshots
// (one per touched group at least), and reads through it (ReadIndex, served locally) and through the
// others must return exactly the acknowledged messages, each once, seqs 1..n, identical everywhere.
// Finally appends through the restarted node must land.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { defaultGroupCount, groupOf } from '../../src/context/routing.js';
import {
  call,
  clusterStatus,
  createCluster,
  createContexts,
  eventually,
  fastRaftEnv,
  killAll,
  sleep,
  waitReady,
  type ClusterNode,
  type TestCluster,
} from './cluster-harness.js';

/** Entries a group keeps before compacting (FASTPACA_RAFT_LOG_RETAIN_ENTRIES); tiny on purpose. */
const LOG_RETAIN = 16;
/** Contexts, each in its own group. */
const GROUPS_TOUCHED = 32;
const APPENDS_BEFORE_KILL = 4;
/** Per context (so per group) after the kill: compaction keeps at most ~LOG_RETAIN behind the head. */
const APPENDS_AFTER_KILL = 3 * LOG_RETAIN;
const APPENDS_AFTER_RESTART = 3;
/** Concurrent appenders (each owns a slice of the contexts and appends to them in order). */
const WRITERS = 16;

/** A message as the API stores it (API.md: tail, export, window, streams). */
interface StoredMessage {
  readonly id: string;
  readonly seq: number;
  readonly role: string;
  readonly parts: readonly { readonly type: string; readonly text?: string }[];
  readonly metadata: unknown;
  readonly token_count: number;
  readonly inserted_at: unknown;
}

/** Ids of the first GROUPS_TOUCHED candidate context ids that fall into distinct groups. */
const contextsInDistinctGroups = (count: number): string[] => {
  const seen = new Set<number>();
  const chosen: string[] = [];
  for (let i = 0; chosen.length < count && i < 100_000; i += 1) {
    const id = `snap-${i}`;
    const group = groupOf(id, defaultGroupCount);
    if (seen.has(group)) continue;
    seen.add(group);
    chosen.push(id);
  }
  return chosen;
};

const CONTEXTS = contextsInDistinctGroups(GROUPS_TOUCHED);
const GROUPS = CONTEXTS.map((id) => groupOf(id, defaultGroupCount));

const messageId = (contextId: string, n: number): string => `${contextId}-m${n}`;
/** ~300 bytes of text that names its message, so a swapped or corrupted body is detected. */
const messageText = (id: string): string => `payload of ${id} `.padEnd(300, '.');

/** Attempts answered with 503 or a dropped connection, retried (logged, for diagnosis). */
let retried = 0;

/** Appends message `n` to `contextId`, retrying the same id (idempotent) until acknowledged. */
const appendUntilAcked = async (pickNode: () => ClusterNode, contextId: string, n: number): Promise<void> => {
  const id = messageId(contextId, n);
  let last = '';
  // Bounded: at most 100 attempts of at most 10 s each; the test's own timeout fires far earlier.
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const node = pickNode();
    const answer = await call(node, 'POST', `/v1/contexts/${contextId}/messages`, {
      message: { role: 'user', parts: [{ type: 'text', text: messageText(id) }], id },
    });
    if (answer.status === 201 || answer.status === 200) return;
    last = `HTTP ${answer.status} ${JSON.stringify(answer.body)} from ${node.name}`;
    retried += 1;
    // A leader change (503) or a connection to a dying node (0) is retried; anything else is a bug.
    if (answer.status !== 503 && answer.status !== 0) throw new Error(`append ${id}: ${last}`);
    await sleep(25);
  }
  throw new Error(`append ${id} never acknowledged; last: ${last}`);
};

/** Appends messages from..to (inclusive) to every context, WRITERS at a time, round-robin over `nodes`. */
const appendRange = async (nodes: () => readonly ClusterNode[], from: number, to: number): Promise<void> => {
  let turn = 0;
  const pickNode = (): ClusterNode => {
    const candidates = nodes();
    turn += 1;
    const node = candidates[turn % candidates.length];
    if (node === undefined) throw new Error('no node to send to');
    return node;
  };
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      const owned = CONTEXTS.filter((_, i) => i % WRITERS === writer);
      for (let n = from; n <= to; n += 1) {
        for (const contextId of owned) await appendUntilAcked(pickNode, contextId, n);
      }
    }),
  );
};

/** The whole stored history of a context as `node` serves it (export, paged, full messages). */
const exportFull = async (node: ClusterNode, contextId: string): Promise<StoredMessage[]> => {
  const messages: StoredMessage[] = [];
  let fromSeq = 0;
  for (let page = 0; page < 100; page += 1) {
    const answer = await call(
      node,
      'GET',
      `/v1/contexts/${contextId}/messages?from_seq=${fromSeq}&limit=1000`,
    );
    if (answer.status !== 200)
      throw new Error(
        `export of ${contextId} on ${node.name}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`,
      );
    const body = answer.body as { messages: StoredMessage[]; next_from_seq?: number };
    messages.push(...body.messages);
    if (body.next_from_seq === undefined) return messages;
    fromSeq = body.next_from_seq;
  }
  throw new Error(`export of ${contextId} did not end`);
};

/** Sum over all label sets of a Prometheus counter in `node`'s /metrics; undefined if not exported. */
const counterValue = async (node: ClusterNode, name: string): Promise<number | undefined> => {
  const response = await fetch(`${node.base}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`metrics of ${node.name}: HTTP ${response.status}`);
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line);
    if (match?.[1] !== name) continue;
    total = (total ?? 0) + Number(match[2]);
  }
  return total;
};

const snapshotsSent = async (nodes: readonly ClusterNode[]): Promise<number> => {
  let total = 0;
  for (const node of nodes) {
    const value = await counterValue(node, 'fastpaca_raft_snapshots_sent_total');
    if (value === undefined) throw new Error(`${node.name} exports no fastpaca_raft_snapshots_sent_total`);
    total += value;
  }
  return total;
};

interface AppliedView {
  readonly group: number;
  readonly applied: number;
}

/** Per touched group, `node`'s applied index; throws if the status leaves one out. */
const appliedIndexes = async (node: ClusterNode): Promise<Map<number, number>> => {
  // The status endpoint reports `applied` per group (src/cluster/membership/internal-protocol.ts GroupView).
  const status = (await clusterStatus(node)) as unknown as { groups: readonly AppliedView[] };
  const applied = new Map<number, number>();
  for (const view of status.groups) {
    if (GROUPS.includes(view.group) && typeof view.applied === 'number')
      applied.set(view.group, view.applied);
  }
  const missing = GROUPS.filter((group) => !applied.has(group));
  if (missing.length > 0)
    throw new Error(`${node.name} reports no applied index for groups ${missing.join(',')}`);
  return applied;
};

describe('a restarted node catches up by snapshot', () => {
  let cluster: TestCluster;
  let nodes: readonly ClusterNode[];

  beforeAll(async () => {
    expect(new Set(GROUPS).size).toBe(GROUPS_TOUCHED);
    cluster = await createCluster(3, {
      ...fastRaftEnv,
      FASTPACA_RAFT_LOG_RETAIN_ENTRIES: String(LOG_RETAIN),
    });
    nodes = cluster.nodes;
    for (const node of nodes) node.start();
    await waitReady(nodes, 30_000);
    await createContexts(nodes, CONTEXTS);
  });

  afterAll(async () => {
    killAll();
    await cluster?.destroy();
  });

  const live = (): ClusterNode[] => nodes.filter((node) => node.alive());

  it('installs snapshots on the restarted node, which then serves the complete history', async () => {
    const [first, second, victim] = nodes;
    if (first === undefined || second === undefined || victim === undefined) throw new Error('no nodes');
    const survivors = [first, second];

    await appendRange(live, 1, APPENDS_BEFORE_KILL);
    // What the victim holds when it dies: catching up from here must need entries compacted away.
    const victimApplied = await appliedIndexes(victim);
    await victim.kill();

    const killedAt = Date.now();
    await appendRange(live, APPENDS_BEFORE_KILL + 1, APPENDS_BEFORE_KILL + APPENDS_AFTER_KILL);
    console.log(
      `${CONTEXTS.length * APPENDS_AFTER_KILL} appends with one node down in ${Date.now() - killedAt} ms (${retried} retried attempts so far)`,
    );
    // Every touched group committed well past the retention beyond the victim's last index, so its
    // leader (which compacts to within LOG_RETAIN of its applied index) no longer has that log.
    const survivorApplied = await appliedIndexes(first);
    for (const group of GROUPS) {
      expect(survivorApplied.get(group) ?? 0).toBeGreaterThan(
        (victimApplied.get(group) ?? 0) + 2 * LOG_RETAIN,
      );
    }

    const sentBefore = await snapshotsSent(survivors);
    const restartedAt = Date.now();
    victim.start();
    await waitReady([victim], 30_000);
    const readyMs = Date.now() - restartedAt;
    // Ready means every group has a leader; wait (bounded) until the victim has applied what the
    // survivors have, so that the snapshot counters below are final for this catch-up.
    await eventually('restarted node applied every touched group', 15_000, async () => {
      const applied = await appliedIndexes(victim);
      return GROUPS.every((group) => (applied.get(group) ?? 0) >= (survivorApplied.get(group) ?? 0));
    });
    console.log(`restarted node ready after ${readyMs} ms, caught up after ${Date.now() - restartedAt} ms`);
    // No client traffic ran since sentBefore, so these snapshots went to the restarted node.
    const sent = (await snapshotsSent(survivors)) - sentBefore;
    console.log(`snapshots sent by the survivors during the catch-up: ${sent}`);
    expect(sent).toBeGreaterThanOrEqual(GROUPS_TOUCHED);
    const received = await counterValue(victim, 'fastpaca_raft_snapshots_received_total');
    expect(received).toBeGreaterThanOrEqual(GROUPS_TOUCHED);

    const total = APPENDS_BEFORE_KILL + APPENDS_AFTER_KILL;
    for (const contextId of CONTEXTS) {
      // The restarted node first: its reads are served from its own (snapshot-installed) state.
      const histories = await Promise.all([victim, first, second].map((node) => exportFull(node, contextId)));
      const [fromVictim] = histories;
      expect(fromVictim?.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(fromVictim?.map((m) => m.id)).toEqual(
        Array.from({ length: total }, (_, i) => messageId(contextId, i + 1)),
      );
      for (const message of fromVictim ?? []) {
        expect(message.role).toBe('user');
        expect(message.parts).toEqual([{ type: 'text', text: messageText(message.id) }]);
      }
      for (const [i, history] of histories.entries()) {
        expect(JSON.stringify(history), `${contextId} differs on ${[victim, first, second][i]?.name}`).toBe(
          JSON.stringify(fromVictim),
        );
      }
    }

    // Writes through the restarted node land, and every node reads them.
    await appendRange(() => [victim], total + 1, total + APPENDS_AFTER_RESTART);
    const final = total + APPENDS_AFTER_RESTART;
    for (const contextId of CONTEXTS) {
      for (const node of nodes) {
        const history = await exportFull(node, contextId);
        expect(
          history.map((m) => m.id),
          `${contextId} on ${node.name}`,
        ).toEqual(Array.from({ length: final }, (_, i) => messageId(contextId, i + 1)));
        expect(history.map((m) => m.seq)).toEqual(Array.from({ length: final }, (_, i) => i + 1));
      }
    }
  }, 90_000);
});
