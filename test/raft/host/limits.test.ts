// Proves the host's bounds and failure answers: full queues answer OVERLOADED, inbound messages past
// their bound are dropped and counted, requests past their deadline answer TIMEOUT on tick, close()
// answers SHUTTING_DOWN, and a failed store write is fatal (onFatal, once) rather than retried.

import { describe, expect, it } from 'vitest';
import type { GroupMessage } from '../../../raft/api.js';
import { MessageType } from '../../../raft/core/types.js';
import { MemoryStore } from '../storage/memory-store.js';
import { bytes, Cluster } from './harness.js';

const GROUP = 1;

const singleNode = async (
  limits: ConstructorParameters<typeof Cluster>[0]['limits'] = {},
): Promise<Cluster> => {
  const cluster = new Cluster({ ids: ['solo'], limits });
  await cluster.start();
  await cluster.host('solo').bootstrapGroup(GROUP, ['solo']);
  await cluster.waitForLeader(GROUP);
  return cluster;
};

describe('RaftHost limits and failures', () => {
  it('answers OVERLOADED once the proposal queue is full', async () => {
    const cluster = await singleNode({ proposalQueueMax: 2 });
    const host = cluster.host('solo');
    const queued = [host.propose(GROUP, bytes('1')), host.propose(GROUP, bytes('2'))];
    expect(await host.propose(GROUP, bytes('3'))).toMatchObject({ ok: false, code: 'OVERLOADED' });
    const outcomes = await cluster.drive(Promise.all(queued));
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true]);
    // The queue drained: proposals are accepted again.
    expect((await cluster.drive(host.propose(GROUP, bytes('4')))).ok).toBe(true);
  });

  it('answers OVERLOADED with the reason while proposals are refused (a disk nearly full), then accepts again', async () => {
    let refusal: string | undefined = 'disk nearly full';
    const cluster = new Cluster({ ids: ['solo'], refuseProposals: () => refusal });
    await cluster.start();
    await cluster.host('solo').bootstrapGroup(GROUP, ['solo']);
    await cluster.waitForLeader(GROUP);
    const host = cluster.host('solo');
    expect(await host.propose(GROUP, bytes('x'))).toEqual({
      ok: false,
      code: 'OVERLOADED',
      message: 'disk nearly full',
    });
    refusal = undefined;
    expect((await cluster.drive(host.propose(GROUP, bytes('y')))).ok).toBe(true);
  });

  it('reports the proposals waiting for a turn as its queue depth', async () => {
    const cluster = await singleNode();
    const host = cluster.host('solo');
    expect(host.proposalQueueDepth()).toBe(0);
    const queued = [host.propose(GROUP, bytes('1')), host.propose(GROUP, bytes('2'))];
    expect(host.proposalQueueDepth()).toBe(2);
    await cluster.drive(Promise.all(queued));
    expect(host.proposalQueueDepth()).toBe(0);
  });

  it('answers OVERLOADED once too many proposals are in flight in the cores', async () => {
    const cluster = await singleNode({ pendingProposalsMax: 1 });
    const host = cluster.host('solo');
    const outcomes = await cluster.drive(
      Promise.all([host.propose(GROUP, bytes('a')), host.propose(GROUP, bytes('b'))]),
    );
    expect(outcomes[0]?.ok).toBe(true);
    expect(outcomes[1]).toMatchObject({ ok: false, code: 'OVERLOADED' });
  });

  it('a follower refusing entries (its disk nearly full) takes none, stays a follower, and catches up once it accepts again', async () => {
    const ids = ['a', 'b', 'c'];
    const refusing = new Set<string>();
    const cluster = new Cluster({
      ids,
      refuseEntries: (id) => (refusing.has(id) ? 'disk nearly full' : undefined),
    });
    await cluster.start();
    for (const id of ids) await cluster.host(id).bootstrapGroup(GROUP, ids);
    const leader = await cluster.waitForLeader(GROUP);
    await cluster.drive(cluster.host(leader).propose(GROUP, bytes('before')));
    const [full, healthy] = ids.filter((id) => id !== leader) as [string, string];
    await cluster.runUntil(
      () => cluster.host(full).status(GROUP)?.lastIndex === cluster.host(leader).status(GROUP)?.lastIndex,
    );
    const lastBefore = cluster.host(full).status(GROUP)?.lastIndex ?? 0;
    const termBefore = cluster.host(leader).status(GROUP)?.term;

    refusing.add(full);
    // The leader commits through the other follower; the full one writes nothing and elects no one.
    for (let i = 0; i < 5; i += 1) {
      expect((await cluster.drive(cluster.host(leader).propose(GROUP, bytes(`while-full-${i}`)))).ok).toBe(
        true,
      );
    }
    for (let round = 0; round < 40; round += 1) await cluster.round();
    expect(cluster.host(full).status(GROUP)?.lastIndex).toBe(lastBefore);
    expect(cluster.host(full).stats().entriesRefused).toBeGreaterThan(0);
    expect(cluster.host(healthy).status(GROUP)?.lastIndex).toBe(lastBefore + 5);
    expect(cluster.host(full).status(GROUP)).toMatchObject({ role: 'follower', term: termBefore });
    expect(cluster.leaderOf(GROUP)).toBe(leader);

    refusing.delete(full);
    await cluster.runUntil(
      () => cluster.host(full).status(GROUP)?.lastIndex === lastBefore + 5,
      200,
      'the follower caught up',
    );
    expect(cluster.host(full).status(GROUP)?.term).toBe(termBefore);
  });

  it('drops and counts inbound messages past the inbound bound', async () => {
    const cluster = new Cluster({ ids: ['a', 'b'], limits: { inboundQueueMax: 3 } });
    await cluster.start();
    await cluster.host('a').bootstrapGroup(GROUP, ['a', 'b']);
    const heartbeat = (term: number): GroupMessage => ({
      group: GROUP,
      message: { type: MessageType.Heartbeat, from: 'b', to: 'a', term, commit: 0 },
    });
    cluster.network.handlersOf('a')?.onMessages('b', [1, 2, 3, 4, 5].map(heartbeat));
    expect(cluster.host('a').stats()).toMatchObject({ messagesReceived: 5, messagesDropped: 2 });
    await cluster.round(false);
    // Once the turn consumed the queue there is room again.
    cluster.network.handlersOf('a')?.onMessages('b', [heartbeat(6)]);
    expect(cluster.host('a').stats().messagesDropped).toBe(2);
  });

  it('answers TIMEOUT when a request outlives its deadline', async () => {
    const cluster = new Cluster({ ids: ['a', 'b', 'c'] });
    await cluster.start();
    for (const id of ['a', 'b', 'c']) await cluster.host(id).bootstrapGroup(GROUP, ['a', 'b', 'c']);
    const leader = await cluster.waitForLeader(GROUP);
    for (const id of ['a', 'b', 'c']) if (id !== leader) cluster.crash(id);
    const outcome = cluster.host(leader).propose(GROUP, bytes('lost quorum'), { timeoutMs: 50 });
    const read = cluster.host(leader).readIndex(GROUP, { timeoutMs: 50 });
    for (let i = 0; i < 4; i += 1) await cluster.round(); // 40 ms: not yet
    let settled = false;
    void outcome.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await cluster.drive(outcome);
    expect(await outcome).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(await read).toMatchObject({ ok: false, code: 'TIMEOUT' });
  });

  it('answers SHUTTING_DOWN to every waiter on close, and to new requests after', async () => {
    const cluster = new Cluster({ ids: ['a', 'b'] });
    await cluster.start();
    for (const id of ['a', 'b']) await cluster.host(id).bootstrapGroup(GROUP, ['a', 'b']);
    const leader = await cluster.waitForLeader(GROUP);
    const other = leader === 'a' ? 'b' : 'a';
    cluster.crash(other);
    const waiting = cluster.host(leader).propose(GROUP, bytes('never'));
    await cluster.round();
    await cluster.host(leader).close();
    expect(await waiting).toMatchObject({ ok: false, code: 'SHUTTING_DOWN' });
    expect(await cluster.host(leader).propose(GROUP, bytes('late'))).toMatchObject({ code: 'SHUTTING_DOWN' });
    expect(cluster.host(leader).hasWork()).toBe(false);
  });

  it('treats a failed store write as fatal: onFatal once, waiters released, no more turns', async () => {
    const store = new MemoryStore();
    const cluster = new Cluster({ ids: ['solo'], store: () => store });
    await cluster.start();
    await cluster.host('solo').bootstrapGroup(GROUP, ['solo']);
    await cluster.waitForLeader(GROUP);
    const host = cluster.host('solo');
    store.failNextWrite = new Error('disk on fire');
    const outcome = host.propose(GROUP, bytes('x'));
    await cluster.round(false);
    expect(await outcome).toMatchObject({ ok: false, code: 'SHUTTING_DOWN' });
    expect(cluster.node('solo').fatal.map((error) => error.message)).toEqual(['disk on fire']);
    const writes = store.writes;
    await host.propose(GROUP, bytes('y'));
    await cluster.round();
    expect(store.writes).toBe(writes);
    expect(host.hasWork()).toBe(false);
  });

  it('refuses an empty proposal: an empty entry is the no-op', async () => {
    const cluster = await singleNode();
    await expect(cluster.host('solo').propose(GROUP, new Uint8Array(0))).rejects.toThrow(RangeError);
  });
});
