// Three real raft processes (dist/bench/raft-process/main.js) over real gRPC on 127.0.0.1 and real LevelDB
// in temp dirs. Proposals stream through the leaders; the leader of group 0 is SIGKILLed mid-stream.
// Proven: a survivor is elected with a higher term; every proposal acknowledged before or after the
// kill is applied on both survivors; the killed process restarted from its data dir catches up (by
// snapshot, because the leader compacted past it) to byte-identical applied state on every group.
// Also: a process presenting the wrong cluster secret is refused and never joins.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GroupId, NodeId } from '../../../raft/core/types.js';
import { encodePut, userKey } from '../../../bench/raft-process/kv-counter-state-machine.js';
import {
  dump,
  eventually,
  getStatus,
  groupStatus,
  killAll,
  propose,
  setPeers,
  sigkill,
  sleep,
  spawnRaftProcess,
  type RaftProcess,
} from './process-harness.js';

const GROUPS = 4;
const TARGET: GroupId = 0;
const MEMBERS: readonly NodeId[] = ['a', 'b', 'c'];
const SECRET = 'real-io-test-secret';
/** Small enough that the leader compacts past a dead follower quickly, forcing a snapshot on restart. */
const LOG_RETAIN = 40;
const FAST_RAFT = [
  '--tick-ms',
  '20',
  '--election-ticks',
  '10',
  '--heartbeat-ticks',
  '1',
  '--log-retain',
  String(LOG_RETAIN),
  '--reconnect-initial-ms',
  '20',
  '--reconnect-max-ms',
  '300',
];
const WRITERS = 8;
const ACKED_BEFORE_KILL = 60;
/** Well past LOG_RETAIN, so the killed node's log position is compacted away on the new leader. */
const ACKED_AFTER_KILL = 3 * LOG_RETAIN;
const STREAM_MS_MAX = 30_000;

const text = new TextEncoder();
const hex = (value: string): string => Buffer.from(text.encode(value)).toString('hex');

interface Acked {
  readonly group: GroupId;
  readonly key: string;
  readonly value: string;
  readonly index: number;
}

describe('three raft processes over gRPC and LevelDB', () => {
  let root: string;
  const nodes = new Map<NodeId, RaftProcess>();
  const peersOf = (): Map<NodeId, string> => new Map([...nodes].map(([id, proc]) => [id, proc.raftAddress]));
  const live = (): RaftProcess[] => [...nodes.values()].filter((proc) => proc.alive());

  /** The node that says it leads `group` (highest term wins), among live nodes. */
  const leaderOf = async (group: GroupId): Promise<{ node: RaftProcess; term: number } | undefined> => {
    let best: { node: RaftProcess; term: number } | undefined;
    for (const node of live()) {
      // A node being killed right now may not answer: it is simply not the leader we want.
      const status = await getStatus(node).then(
        (nodeStatus) => groupStatus(nodeStatus, group),
        () => undefined,
      );
      if (status === undefined) continue;
      if (status.role === 'leader' && (best === undefined || status.term > best.term)) {
        best = { node, term: status.term };
      }
    }
    return best;
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fastpaca-real-io-'));
    const started = await Promise.all(
      MEMBERS.map((id) =>
        spawnRaftProcess({
          id,
          dataDir: join(root, id),
          members: MEMBERS,
          groups: GROUPS,
          secret: SECRET,
          args: FAST_RAFT,
        }),
      ),
    );
    for (const proc of started) nodes.set(proc.id, proc);
    // Ports are ephemeral, so addresses are known only now: hand every node the full map.
    for (const proc of started) await setPeers(proc, peersOf());
    for (let group = 0; group < GROUPS; group += 1) {
      await eventually(`a leader of group ${group}`, () => leaderOf(group));
    }
  });

  afterAll(async () => {
    await killAll();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it('keeps every acknowledged proposal across a leader SIGKILL and a restart that catches up by snapshot', async () => {
    const acked: Acked[] = [];
    const ackedIn = (group: GroupId): number => acked.filter((item) => item.group === group).length;
    const leaderCache = new Map<GroupId, RaftProcess>();
    let killedAt: number | undefined;
    let ackedInTargetAtKill = 0;
    /** For failure messages: the highest index acknowledged per group when the kill was sent. */
    const lastAckedBeforeKill = new Map<GroupId, number>();
    let stop = false;

    const writer = async (id: number): Promise<void> => {
      let seq = 0;
      while (!stop) {
        // Half the writers hammer the target group, the rest spread over the others.
        const group = id % 2 === 0 ? TARGET : 1 + ((id >> 1) % (GROUPS - 1));
        let target = leaderCache.get(group);
        if (target === undefined || !target.alive()) {
          target = (await leaderOf(group))?.node;
          if (target === undefined) {
            await sleep(20);
            continue;
          }
          leaderCache.set(group, target);
        }
        const key = `w${id}-${seq}`;
        const value = `value of ${key} in group ${group}`;
        seq += 1;
        try {
          const outcome = await propose(target, group, encodePut(text.encode(key), text.encode(value)));
          if (outcome.ok) acked.push({ group, key, value, index: outcome.index });
          else {
            const hinted = outcome.leader ? nodes.get(outcome.leader) : undefined;
            if (hinted !== undefined && hinted.alive()) leaderCache.set(group, hinted);
            else leaderCache.delete(group);
            await sleep(10);
          }
        } catch {
          // The process died with the request in flight: its outcome is unknown, so it is not acked.
          leaderCache.delete(group);
        }
      }
    };

    const oldLeader = await eventually('a leader of the target group', () => leaderOf(TARGET));
    const writers = Array.from({ length: WRITERS }, (_, id) => writer(id));
    try {
      await eventually(
        `${ACKED_BEFORE_KILL} acknowledged proposals`,
        async () => (ackedIn(TARGET) >= ACKED_BEFORE_KILL ? true : undefined),
        STREAM_MS_MAX,
      );
      // Mid-stream: the writers keep proposing while the leader dies under them.
      ackedInTargetAtKill = ackedIn(TARGET);
      for (const item of acked) {
        lastAckedBeforeKill.set(item.group, Math.max(lastAckedBeforeKill.get(item.group) ?? 0, item.index));
      }
      killedAt = Date.now();
      await sigkill(oldLeader.node);
      await eventually(
        `${ACKED_AFTER_KILL} acknowledged proposals after the kill`,
        async () => (ackedIn(TARGET) - ackedInTargetAtKill >= ACKED_AFTER_KILL ? true : undefined),
        STREAM_MS_MAX,
      );
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(killedAt).toBeDefined();

    // A new leader among the survivors, in a later term.
    const newLeader = await eventually('a new leader of the target group', () => leaderOf(TARGET));
    expect(newLeader.node.id).not.toBe(oldLeader.node.id);
    expect(newLeader.term).toBeGreaterThan(oldLeader.term);

    // Every acknowledged proposal (before and after the kill) is applied on both survivors.
    const survivors = live();
    expect(survivors).toHaveLength(2);
    for (let group = 0; group < GROUPS; group += 1) {
      const mine = acked.filter((item) => item.group === group);
      const lastIndex = Math.max(0, ...mine.map((item) => item.index));
      for (const survivor of survivors) {
        const state = await eventually(
          `${survivor.id} to apply group ${group} up to ${lastIndex}`,
          async () => {
            const current = await dump(survivor, group);
            return current.applied >= lastIndex ? current : undefined;
          },
        );
        const stored = new Map(state.pairs.map(([k, v]) => [k, v]));
        const missing = mine
          .filter(
            (item) =>
              stored.get(Buffer.from(userKey(text.encode(item.key))).toString('hex')) !== hex(item.value),
          )
          .map((item) => ({
            ...item,
            applied: state.applied,
            killedAtIndex: lastAckedBeforeKill.get(group),
          }));
        expect(missing, `acknowledged proposals missing on ${survivor.id}, group ${group}`).toEqual([]);
      }
    }

    // Restart the killed process from its data dir on its old port; peers come from the command line.
    const before = oldLeader.node;
    const restarted = await spawnRaftProcess({
      id: before.id,
      dataDir: before.dataDir,
      members: MEMBERS,
      groups: GROUPS,
      secret: SECRET,
      raftPort: before.raftPort,
      peers: new Map([...peersOf()].filter(([id]) => id !== before.id)),
      args: FAST_RAFT,
    });
    nodes.set(restarted.id, restarted);

    // It catches up: identical durable state-machine space, applied index and log position (term,
    // commit, last index) on all three, for every group.
    for (let group = 0; group < GROUPS; group += 1) {
      await eventually(
        `group ${group} identical on all three nodes`,
        async () => {
          const views = await Promise.all(
            live().map(async (node) => {
              const raft = groupStatus(await getStatus(node), group);
              const state = await dump(node, group);
              return JSON.stringify([raft.term, raft.commit, raft.lastIndex, raft.applied, state]);
            }),
          );
          const [first, ...rest] = views;
          return views.length === 3 && rest.every((other) => other === first) ? true : undefined;
        },
        20_000,
      );
    }
    const status = await getStatus(restarted);
    // The new leader compacted past the dead node's log, so the target group came back by snapshot.
    expect(status.host.snapshotsReceived).toBeGreaterThanOrEqual(1);
    expect(groupStatus(status, TARGET).firstIndex).toBeGreaterThan(1);
  });

  it('refuses a process that presents the wrong cluster secret', async () => {
    const real = live();
    expect(real.length).toBeGreaterThanOrEqual(2);
    const refusedBefore = await Promise.all(
      real.map(async (node) => (await getStatus(node)).transport.callsUnauthenticated),
    );
    // It claims membership of every group alongside two real nodes and campaigns; nobody may listen.
    const intruder = await spawnRaftProcess({
      id: 'x',
      dataDir: join(root, 'x'),
      members: ['x', ...real.slice(0, 2).map((node) => node.id)],
      groups: GROUPS,
      secret: 'not-the-cluster-secret',
      peers: peersOf(),
      args: FAST_RAFT,
    });
    try {
      // The intruder's dials end in UNAUTHENTICATED (grpc status 16), counted by the real nodes.
      await eventually('the intruder to be refused with UNAUTHENTICATED', async () => {
        const status = await getStatus(intruder);
        return status.linkErrors.some((error) => error.code === 16) ? true : undefined;
      });
      const refusedAfter = await Promise.all(
        real.map(async (node) => (await getStatus(node)).transport.callsUnauthenticated),
      );
      expect(refusedAfter.some((count, i) => count > (refusedBefore[i] ?? 0))).toBe(true);
      // Nothing reached the intruder, and it never saw a leader for any group.
      const intruderStatus = await getStatus(intruder);
      expect(intruderStatus.transport.framesReceived).toBe(0);
      expect(intruderStatus.groups.every((group) => group.leader === null)).toBe(true);
      // The real nodes still agree on leaders among themselves.
      for (const node of real) {
        for (const group of (await getStatus(node)).groups) expect(group.leader).not.toBe('x');
      }
    } finally {
      await sigkill(intruder);
    }
  });
});
