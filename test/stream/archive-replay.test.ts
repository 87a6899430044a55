// Stream replay across the trim point against the real state machine (no node, no Postgres): the
// archived appends come from an in-memory archive made of the rows the archiver would have written.
// A replay from any cursor after a trim gives exactly the events the untrimmed history gave (every
// policy compaction and window change of each append, the stored events in between), reading the
// archive in bounded pages and in batches that end between versions. Rows the archive lacks, or
// rows archived without their events, become one `gap` item; a trim that overtakes the replay is a
// HistoryTrimmedError; an archive that does not answer fails the replay with its ServiceError.
// (test/archiver/stream-archive.test.ts runs the same path end to end against a real PostgreSQL.)

import { describe, expect, it } from 'vitest';

import { ServiceError } from '../../src/api/errors.js';
import type { ArchivedAppend } from '../../src/context/archive-reader.js';
import type { Command } from '../../src/context/commands.js';
import { HistoryTrimmedError, isReplayGap } from '../../src/context/event-replay.js';
import type { ArchivedAppends, ReplayItem } from '../../src/context/event-replay.js';
import type { ContextEvent } from '../../src/context/events.js';
import { stamp, World } from '../context/world.js';

const id = 'archived-stream';
const appends = 300;

interface Built {
  readonly world: World;
  /** Every event of the untrimmed history, in stream order. */
  readonly oracle: ContextEvent[];
  /** What the archiver wrote, by seq. */
  readonly archive: Map<number, ArchivedAppend>;
  run(command: Omit<Command, 'now'>): Promise<unknown>;
}

/**
 * 300 appends, each over the window's threshold (a policy compaction and a window change each), a
 * metadata patch and a manual compaction among them (events stored under their own keys), then
 * archived through 290 and trimmed to a tail of 5: seqs 1..285 are only in the archive.
 */
const build = async (): Promise<Built> => {
  const world = new World();
  let step = 0;
  const run = (command: Omit<Command, 'now'>) => world.run({ ...command, now: stamp(++step) } as Command);
  const lastN = { strategy: 'last_n', config: { limit: 2 } };
  await run({
    type: 'put_context',
    contextId: id,
    changes: { token_budget: 5, policy: lastN },
    defaults: { triggerRatio: 0.7, policy: lastN },
  } as Omit<Command, 'now'>);
  for (let seq = 1; seq <= appends; seq++) {
    await run({
      type: 'append',
      contextId: id,
      message: { role: 'user', parts: [{ type: 'text', text: `m${seq}` }], tokenCount: 3, partTokens: [3] },
    } as Omit<Command, 'now'>);
    if (seq === 40)
      await run({ type: 'patch_metadata', contextId: id, metadata: { at: 40 } } as Omit<Command, 'now'>);
    if (seq === 120) {
      await run({
        type: 'compact',
        contextId: id,
        replacement: [
          { role: 'system', parts: [{ type: 'text', text: 'summary' }], tokenCount: 1, partTokens: [1] },
        ],
      } as Omit<Command, 'now'>);
    }
  }
  const group = world.group(id);
  const kv = world.kv(id);
  const position = await world.sm.streamPosition(group, kv, id);
  if (position === undefined) throw new Error('no position');
  const oracle = events(await collect(world.sm.streamEvents(group, kv, id, position, { version: 0 })));
  const archive = new Map<number, ArchivedAppend>();
  for (let from = 1; from <= appends;) {
    const rows = await world.sm.archiveRows(group, kv, id, from, appends);
    for (const row of rows) archive.set(row.message.seq, { ...row, eventsComplete: true });
    from = (rows.at(-1)?.message.seq ?? appends) + 1;
  }
  await run({ type: 'ack_archived', contextId: id, upToSeq: 290, tailKeep: 5 } as Omit<Command, 'now'>);
  return { world, oracle, archive, run };
};

const collect = async (replay: AsyncIterable<readonly ReplayItem[]>): Promise<ReplayItem[][]> => {
  const batches: ReplayItem[][] = [];
  for await (const batch of replay) batches.push([...batch]);
  return batches;
};

const events = (batches: readonly (readonly ReplayItem[])[]): ContextEvent[] =>
  batches.flat().flatMap((item) => (isReplayGap(item) ? [] : [item.event]));

const versionOf = (item: ReplayItem): number =>
  isReplayGap(item) ? item.gap.actual - 1 : item.event.version;

/** An archive reader over `rows` that records each read's limit. */
const archiveOf = (rows: ReadonlyMap<number, ArchivedAppend>, limits: number[] = []): ArchivedAppends => {
  return async (afterSeq, throughSeq, limit) => {
    limits.push(limit);
    const found: ArchivedAppend[] = [];
    for (let seq = afterSeq + 1; seq <= throughSeq && found.length < limit; seq++) {
      const row = rows.get(seq);
      if (row !== undefined) found.push(row);
    }
    return found;
  };
};

const replay = async (built: Built, cursor: number, archived: ArchivedAppends | undefined) => {
  const { world } = built;
  const group = world.group(id);
  const kv = world.kv(id);
  const position = await world.sm.streamPosition(group, kv, id);
  if (position === undefined) throw new Error('no position');
  return {
    position,
    batches: await collect(world.sm.streamEvents(group, kv, id, position, { version: cursor }, archived)),
  };
};

describe('stream replay across the trim point', () => {
  it('replays archived appends with every event, in pages, exactly as the untrimmed history', async () => {
    const built = await build();
    const { position } = await replay(built, 0, undefined);
    expect(position.trimmedThroughSeq).toBe(285);
    expect(position.retainedFromVersion).toBeGreaterThan(285);
    // The history holds what the replay must bring back: policy runs, window changes, stored events.
    expect(
      built.oracle.filter((e) => e.type === 'compaction' && e.reason === 'policy').length,
    ).toBeGreaterThan(250);
    expect(built.oracle.filter((e) => e.type === 'context' && e.change === 'window').length).toBeGreaterThan(
      250,
    );
    expect(built.oracle.some((e) => e.type === 'context' && e.change === 'metadata')).toBe(true);
    expect(built.oracle.some((e) => e.type === 'compaction' && e.reason === 'replace')).toBe(true);

    for (const cursor of [0, 1, 41, 121, 200, 284]) {
      const limits: number[] = [];
      const { batches } = await replay(built, cursor, archiveOf(built.archive, limits));
      expect(events(batches)).toEqual(built.oracle.filter((e) => e.version > cursor));
      // Pages, never the whole history; batches end between versions.
      expect(Math.max(...limits)).toBeLessThanOrEqual(256);
      if (cursor === 0) expect(limits.length).toBeGreaterThanOrEqual(2);
      for (let i = 1; i < batches.length; i++) {
        const before = batches[i - 1]?.at(-1);
        const first = batches[i]?.[0];
        if (before !== undefined && first !== undefined)
          expect(versionOf(first)).toBeGreaterThan(versionOf(before));
      }
    }
  });

  it('without an archive, starts at the first message the store holds', async () => {
    const built = await build();
    const { position, batches } = await replay(built, 0, undefined);
    const from = position.retainedFromVersion;
    const replayed = events(batches);
    expect(replayed.filter((e) => e.type === 'message')[0]).toMatchObject({ seq: 286, version: from });
    // The stored events before it are still sent (nothing older was trimmed from them).
    expect(replayed.filter((e) => e.version >= from)).toEqual(built.oracle.filter((e) => e.version >= from));
  });

  it('gives one gap item for rows the archive lacks or holds without their events, and nothing of those versions', async () => {
    const built = await build();
    const rows = new Map(built.archive);
    const versionOfSeq = (seq: number): number => rows.get(seq)?.version ?? Number.NaN;
    // Pruned from the archive (a retention job), and archived before window changes were kept.
    for (let seq = 50; seq <= 60; seq++) rows.delete(seq);
    const old = rows.get(100);
    if (old !== undefined) rows.set(100, { ...old, eventsComplete: false });
    const [firstMissing, nextAfter, incomplete, afterIncomplete] = [
      built.archive.get(50)?.version ?? 0,
      versionOfSeq(61),
      versionOfSeq(100),
      versionOfSeq(101),
    ];
    const { batches } = await replay(built, 0, archiveOf(rows));
    const gaps = batches.flat().filter(isReplayGap);
    expect(gaps.map((item) => item.gap)).toEqual([
      { expected: firstMissing, actual: nextAfter },
      { expected: incomplete, actual: afterIncomplete },
    ]);
    const skipped = (v: number) =>
      (v >= firstMissing && v < nextAfter) || (v >= incomplete && v < afterIncomplete);
    expect(events(batches)).toEqual(built.oracle.filter((e) => !skipped(e.version)));
  });

  it('gives a gap up to the position when the archive lacks everything after the cursor', async () => {
    const built = await build();
    const { position, batches } = await replay(built, 0, archiveOf(new Map()));
    const first = batches.flat()[0];
    expect(first).toEqual({ gap: { expected: 1, actual: position.retainedFromVersion } });
    expect(events(batches)).toEqual(built.oracle.filter((e) => e.version >= position.retainedFromVersion));
  });

  it('fails with HistoryTrimmedError when a trim takes messages it has not read yet', async () => {
    const built = await build();
    const reader = archiveOf(built.archive);
    let trimmed = false;
    const trimming: ArchivedAppends = async (afterSeq, throughSeq, limit) => {
      if (!trimmed) {
        trimmed = true;
        // Everything archived, tail 0: the store loses 286..290 before the replay reaches them.
        await built.run({ type: 'ack_archived', contextId: id, upToSeq: 290, tailKeep: 0 } as Omit<
          Command,
          'now'
        >);
      }
      return reader(afterSeq, throughSeq, limit);
    };
    await expect(replay(built, 0, trimming)).rejects.toBeInstanceOf(HistoryTrimmedError);
    // Started again at a new position, it reads the newly trimmed part from the archive.
    const { batches } = await replay(built, 0, reader);
    expect(events(batches)).toEqual(built.oracle);
  });

  it('fails with archive_unavailable when the archive does not answer', async () => {
    const built = await build();
    const down: ArchivedAppends = () =>
      Promise.reject(new ServiceError('archive_unavailable', 'down', { retryAfterSeconds: 1 }));
    await expect(replay(built, 0, down)).rejects.toMatchObject({ code: 'archive_unavailable' });
  });
});
