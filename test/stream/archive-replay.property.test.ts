// Property tests of stream replay across the trim point (event-replay.ts) under random command
// sequences with the archiver's acks mixed in: the archive holds what the archiver would have
// written before each ack (every row of the store not archived yet, as ON CONFLICT DO NOTHING keeps
// the first). From any cursor, the replay with that archive is exactly the events the state machine
// announced live with a greater version, in the same order. With rows missing from the archive, the
// replay is the live events in order minus whole versions, and every version it leaves out lies in
// a `gap` item that covers at least one missing row.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { ArchivedAppend } from '../../src/context/archive-reader.js';
import { isReplayGap } from '../../src/context/event-replay.js';
import type { ArchivedAppends, ReplayItem } from '../../src/context/event-replay.js';
import type { ContextEvent } from '../../src/context/events.js';
import { contextIds, intentsWithAcksArb } from '../context/arbitraries.js';
import { ContextModel } from '../context/model.js';
import { World } from '../context/world.js';

interface Run {
  readonly world: World;
  /** Each context's events as announced live, in apply order. */
  readonly live: Map<string, ContextEvent[]>;
  /** Each context's archive: seq -> the row first written. */
  readonly archive: Map<string, Map<number, ArchivedAppend>>;
}

const run = async (intents: Parameters<ContextModel['resolve']>[0][]): Promise<Run> => {
  const world = new World();
  const model = new ContextModel();
  const live = new Map<string, ContextEvent[]>();
  const archive = new Map<string, Map<number, ArchivedAppend>>();
  for (const intent of intents) {
    const command = model.resolve(intent);
    const id = command.contextId;
    if (command.type === 'ack_archived') {
      // What the archiver wrote before this ack: every row the store still holds.
      const rows = archive.get(id) ?? new Map<number, ArchivedAppend>();
      archive.set(id, rows);
      const lastSeq = (await world.getContext(id))?.last_seq ?? 0;
      for (let from = 1; from <= lastSeq;) {
        const page = await world.sm.archiveRows(world.group(id), world.kv(id), id, from, lastSeq);
        for (const row of page)
          if (!rows.has(row.message.seq)) rows.set(row.message.seq, { ...row, eventsComplete: true });
        from = (page.at(-1)?.message.seq ?? lastSeq) + 1;
      }
    }
    const result = await world.run(command);
    model.apply(command, result, world.lastEvents);
    live.set(id, [...(live.get(id) ?? []), ...world.lastEvents]);
  }
  return { world, live, archive };
};

const archiveOf =
  (rows: ReadonlyMap<number, ArchivedAppend>): ArchivedAppends =>
  async (afterSeq, throughSeq, limit) => {
    const found: ArchivedAppend[] = [];
    for (let seq = afterSeq + 1; seq <= throughSeq && found.length < limit; seq++) {
      const row = rows.get(seq);
      if (row !== undefined) found.push(row);
    }
    return found;
  };

const replay = async (
  world: World,
  id: string,
  cursor: number,
  archived: ArchivedAppends,
): Promise<ReplayItem[] | undefined> => {
  const position = await world.sm.streamPosition(world.group(id), world.kv(id), id);
  if (position === undefined) return undefined;
  const items: ReplayItem[] = [];
  for await (const batch of world.sm.streamEvents(
    world.group(id),
    world.kv(id),
    id,
    position,
    { version: cursor },
    archived,
  ))
    items.push(...batch);
  return items;
};

const eventsOf = (items: readonly ReplayItem[]): ContextEvent[] =>
  items.flatMap((item) => (isReplayGap(item) ? [] : [item.event]));

describe('stream replay across the trim point under random command sequences', () => {
  it('gives exactly the live events after the cursor, from a complete archive', async () => {
    await fc.assert(
      fc.asyncProperty(intentsWithAcksArb(80), fc.nat(100), async (intents, cursorSeed) => {
        const { world, live, archive } = await run(intents);
        for (const id of contextIds) {
          const events = live.get(id) ?? [];
          const last = Math.max(0, ...events.map((event) => event.version));
          for (const cursor of [0, cursorSeed % (last + 1), last]) {
            const items = await replay(world, id, cursor, archiveOf(archive.get(id) ?? new Map()));
            if (items === undefined) continue;
            expect(items.filter(isReplayGap)).toEqual([]);
            expect(eventsOf(items)).toEqual(events.filter((event) => event.version > cursor));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('leaves out only whole versions inside gaps that cover missing rows, from an archive with holes', async () => {
    await fc.assert(
      fc.asyncProperty(
        intentsWithAcksArb(80),
        fc.array(fc.nat(60), { maxLength: 8 }),
        async (intents, missing) => {
          const { world, live, archive } = await run(intents);
          for (const id of contextIds) {
            const rows = new Map(archive.get(id) ?? new Map<number, ArchivedAppend>());
            const removed = missing
              .map((seq) => rows.get(seq))
              .filter((row): row is ArchivedAppend => row !== undefined);
            for (const row of removed) rows.delete(row.message.seq);
            const items = await replay(world, id, 0, archiveOf(rows));
            if (items === undefined) continue;
            const gaps = items.filter(isReplayGap).map((item) => item.gap);
            const inGap = (version: number) =>
              gaps.some((gap) => version >= gap.expected && version < gap.actual);
            const expected = (live.get(id) ?? []).filter(
              (event) => event.version > 0 && !inGap(event.version),
            );
            expect(eventsOf(items)).toEqual(expected);
            for (const gap of gaps) {
              expect(gap.actual).toBeGreaterThan(gap.expected);
              expect(removed.some((row) => row.version >= gap.expected && row.version < gap.actual)).toBe(
                true,
              );
            }
            // A row the archive lacks (and the store no longer holds) is never replayed.
            const replayedSeqs = new Set(
              eventsOf(items).flatMap((event) => (event.type === 'message' ? [event.seq] : [])),
            );
            const position = await world.sm.streamPosition(world.group(id), world.kv(id), id);
            for (const row of removed)
              if (row.message.seq <= (position?.trimmedThroughSeq ?? 0))
                expect(replayedSeqs.has(row.message.seq)).toBe(false);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
