// ReadIndex on a follower host across a restart. Regression test for a bug the simulator found (seed
// 5315 of the compaction-pressure scenario): read contexts restarted at 1 with every incarnation, so a
// leader's answer to a read the node sent before it crashed (queued for it while it restarted) resolved
// a new read of the same number with the old, stale index: a linearizability violation.

import { describe, expect, it } from 'vitest';
import type {
  GroupMessage,
  ReadOutcome,
  SnapshotChunk,
  Transport,
  TransportHandlers,
} from '../../../raft/api.js';
import { MessageType, type Message, type NodeId } from '../../../raft/core/types.js';
import { RaftHost } from '../../../raft/host/index.js';
import { MemoryStore } from '../storage/memory-store.js';
import { RecordingStateMachine, seeded, testLimits } from './harness.js';

const GROUP = 0;
const VOTERS = ['a', 'b', 'c'];

/** A transport that records what the host sends and lets the test hand it messages from peers. */
class ScriptedTransport implements Transport {
  handlers: TransportHandlers | undefined;
  readonly sent: Message[] = [];

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
  }
  setPeers(): void {}
  send(_to: NodeId, batch: readonly GroupMessage[]): void {
    for (const { message } of batch) this.sent.push(message);
  }
  async sendSnapshot(_to: NodeId, _chunks: AsyncIterable<SnapshotChunk>): Promise<boolean> {
    return false;
  }
  drainUnreachable(): readonly NodeId[] {
    return [];
  }
  async stop(): Promise<void> {}

  deliver(message: Omit<Message, 'to'>): void {
    this.handlers?.onMessages(message.from, [{ group: GROUP, message: { ...message, to: 'b' } }]);
  }
}

/** Follower `b` of a group led by `a` in term 2, over `store`; `seed` stands for the process's randomness. */
const openFollower = async (
  store: MemoryStore,
  seed: number,
): Promise<{ host: RaftHost<string>; transport: ScriptedTransport }> => {
  const transport = new ScriptedTransport();
  const host = await RaftHost.open<string>({
    nodeId: 'b',
    store,
    transport,
    stateMachine: new RecordingStateMachine(),
    random: seeded(seed),
    now: () => 0,
    electionTicks: 10,
    heartbeatTicks: 2,
    preVote: true,
    checkQuorum: true,
    limits: testLimits(),
    onFatal: (error) => {
      throw error;
    },
  });
  await host.bootstrapGroup(GROUP, VOTERS);
  // The leader's heartbeat makes `a` b's leader, so reads go to it.
  transport.deliver({ type: MessageType.Heartbeat, from: 'a', term: 2, commit: 1 });
  await runTurns(host);
  return { host, transport };
};

const runTurns = async (host: RaftHost<string>): Promise<void> => {
  for (let i = 0; i < 10 && host.hasWork(); i += 1) await host.turn();
};

/** Starts a read on `b` and returns its promise and the context of the ReadIndex it sent the leader. */
const startRead = async (
  host: RaftHost<string>,
  transport: ScriptedTransport,
): Promise<{ outcome: Promise<ReadOutcome>; context: number }> => {
  const outcome = host.readIndex(GROUP, { timeoutMs: 60_000 });
  await runTurns(host);
  const request = transport.sent.filter((m) => m.type === MessageType.ReadIndex).at(-1);
  expect(request?.to).toBe('a');
  return { outcome, context: request?.context ?? -1 };
};

describe('RaftHost ReadIndex across a restart', () => {
  it('does not resolve a new read with the answer to a read of the previous incarnation', async () => {
    const store = new MemoryStore();
    const first = await openFollower(store, 11);
    const old = await startRead(first.host, first.transport);
    // b crashes before the leader answers; a new incarnation starts a read of its own.
    const second = await openFollower(store, 23);
    const fresh = await startRead(second.host, second.transport);
    expect(fresh.context).not.toBe(old.context);

    let settled: ReadOutcome | undefined;
    void fresh.outcome.then((outcome) => (settled = outcome));
    // The leader's answer to the old read, at the old commit index, reaches the new incarnation.
    second.transport.deliver({
      type: MessageType.ReadIndexResp,
      from: 'a',
      term: 2,
      index: 1,
      context: old.context,
    });
    await runTurns(second.host);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBeUndefined();

    // Its own answer resolves it.
    second.transport.deliver({
      type: MessageType.ReadIndexResp,
      from: 'a',
      term: 2,
      index: 1,
      context: fresh.context,
    });
    await runTurns(second.host);
    expect(await fresh.outcome).toEqual({ ok: true, index: 1 });
    await second.host.close();
    await first.host.close();
  });
});
