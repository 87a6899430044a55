// Proves a single-voter host over a real LevelDB (temp dir), driven in real time by startHostLoop,
// answers proposals with the state machine's results, and that after close and reopen every
// acknowledged entry is still applied, the group leads again on its own and indexes keep growing.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KvStore, ProposeOutcome } from '../../../raft/api.js';
import { startHostLoop, type HostLoop } from '../../../raft/driver.js';
import { RaftHost } from '../../../raft/host/index.js';
import { openLevelStore } from '../../../raft/storage/level-store.js';
import { appliedData, bytes, MemoryNetwork, RecordingStateMachine, seeded, testLimits } from './harness.js';

const GROUPS = [0, 1, 2, 3, 200];
const WAIT_MS_MAX = 20_000;

/** Polls `done` every few ms; fails after WAIT_MS_MAX (a bound, not a timing assertion). */
const waitFor = async (done: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

interface Running {
  readonly host: RaftHost<string>;
  readonly loop: HostLoop;
  readonly store: KvStore;
  readonly stateMachine: RecordingStateMachine;
  readonly fatal: Error[];
}

describe('RaftHost over LevelDB with the real-time loop', () => {
  let dir: string;
  const running: Running[] = [];

  const start = async (): Promise<Running> => {
    const store = await openLevelStore(dir);
    const stateMachine = new RecordingStateMachine();
    const fatal: Error[] = [];
    const host = await RaftHost.open<string>({
      nodeId: 'solo',
      store,
      transport: new MemoryNetwork().transport('solo'),
      stateMachine,
      random: seeded(42),
      now: () => Date.now(),
      electionTicks: 10,
      heartbeatTicks: 2,
      preVote: true,
      checkQuorum: true,
      limits: testLimits({ logRetainEntries: 10 }),
      onFatal: (error) => fatal.push(error),
    });
    const loop = startHostLoop(host, { tickMs: 10 });
    const node = { host, loop, store, stateMachine, fatal };
    running.push(node);
    return node;
  };

  const stop = async (node: Running): Promise<void> => {
    running.splice(running.indexOf(node), 1);
    await node.loop.stop();
    await node.host.close();
    await node.store.close();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fastpaca-host-'));
  });

  afterEach(async () => {
    for (const node of [...running]) await stop(node);
    await rm(dir, { recursive: true, force: true });
  });

  it('answers proposals, recovers every acknowledged entry after reopen, and keeps going', async () => {
    const first = await start();
    for (const group of GROUPS) await first.host.bootstrapGroup(group, ['solo']);
    await waitFor(
      () => GROUPS.every((group) => first.host.leaderOf(group) === 'solo'),
      'single-voter leaders',
    );

    const proposals: Promise<ProposeOutcome<string>>[] = [];
    for (let i = 0; i < 120; i += 1) {
      const group = GROUPS[i % GROUPS.length] as number;
      proposals.push(first.host.propose(group, bytes(`m${i}`)));
    }
    const outcomes = await Promise.all(proposals);
    expect(outcomes.every((outcome) => outcome.ok)).toBe(true);
    const firstOutcome = outcomes[0];
    expect(firstOutcome?.ok === true && firstOutcome.result).toMatch(/^0:\d+:m0$/);
    // Bootstrapping again is a no-op.
    await first.host.bootstrapGroup(0, ['solo']);
    // The applied record of a turn is written with the next turn's batch: when every proposal
    // landed in one turn (a loaded machine), only a later write makes it durable and lets the log
    // compact. One more proposal per group provides that write.
    const flushes = await Promise.all(
      GROUPS.map((group) => first.host.propose(group, bytes(`flush${group}`))),
    );
    expect(flushes.every((outcome) => outcome.ok)).toBe(true);
    await waitFor(() => !first.host.hasWork(), 'an idle host');
    expect(first.stateMachine.persistedCalls.length).toBeGreaterThan(0);
    expect(first.host.stats().compactions).toBeGreaterThan(0);
    const lastIndexOfGroup0 = Math.max(
      ...outcomes.filter((_, i) => i % GROUPS.length === 0).map((o) => (o.ok ? o.index : 0)),
    );
    await stop(first);

    const second = await start();
    expect(second.host.groups()).toEqual(GROUPS);
    await waitFor(
      () => GROUPS.every((group) => second.host.leaderOf(group) === 'solo'),
      'leaders after reopen',
    );
    for (const [g, group] of GROUPS.entries()) {
      const expected = Array.from({ length: 120 }, (_, i) => i)
        .filter((i) => i % GROUPS.length === g)
        .map((i) => `m${i}`);
      expect(await appliedData(second.host.groupKv(group))).toEqual([...expected, `flush${group}`]);
    }
    const next = await second.host.propose(0, bytes('after'));
    expect(next.ok && next.index).toBeGreaterThan(lastIndexOfGroup0);
    expect(second.fatal).toEqual([]);
  });
});
