// The checker on hand-built and generated histories: a correct history passes, and each kind of
// broken promise (a lost write, a stale read, a duplicate, a gap, diverging replicas) is found.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { checkHistory, type FinalMessage, type FinalStates } from './checker.js';
import type { HistoryEvent, Operation, Observation } from './recorder.js';

let clock = 0;
let nextIndex = 0;
const event = (
  op: Operation,
  status: number,
  observed?: Observation,
  times?: { start: number; end: number },
): HistoryEvent => {
  const start = times?.start ?? (clock += 1);
  const end = times?.end ?? (clock += 1);
  return { index: (nextIndex += 1), node: 'n1', op, start, end, status, ...(observed ? { observed } : {}) };
};
const append = (context: string, key: string, seq: number, status = 201): HistoryEvent =>
  event(
    { kind: 'append', context, key },
    status,
    status === 201 || status === 200 ? { seq, version: seq } : undefined,
  );
const tail = (context: string, seq: number): HistoryEvent =>
  event({ kind: 'read', context, read: 'tail' }, 200, { seq });

const finals = (states: Record<string, Record<string, readonly FinalMessage[]>>): FinalStates =>
  new Map(Object.entries(states).map(([node, contexts]) => [node, new Map(Object.entries(contexts))]));

const msgs = (...ids: string[]): FinalMessage[] => ids.map((id, i) => ({ id, seq: i + 1 }));

describe('checker', () => {
  it('passes a correct history', () => {
    const history = [
      append('c', 'a', 1),
      append('c', 'b', 2),
      tail('c', 2),
      append('c', 'x', 0, 0),
      tail('c', 3),
    ];
    const report = checkHistory(
      history,
      finals({ n1: { c: msgs('a', 'b', 'x') }, n2: { c: msgs('a', 'b', 'x') } }),
    );
    expect(report.violations).toEqual([]);
    expect(report.acknowledged).toBe(2);
    expect(report.reads).toBe(2);
  });

  it('finds a lost write', () => {
    const history = [append('c', 'a', 1), append('c', 'b', 2)];
    const report = checkHistory(history, finals({ n1: { c: msgs('a') }, n2: { c: msgs('a') } }));
    expect(report.violations.map((v) => v.kind)).toEqual(['lost', 'lost']);
  });

  it('finds a stale read', () => {
    const history = [append('c', 'a', 1), append('c', 'b', 2), tail('c', 1)];
    const report = checkHistory(history, finals({ n1: { c: msgs('a', 'b') } }));
    expect(report.violations.map((v) => v.kind)).toEqual(['stale-read']);
  });

  it('finds a read older than a read answered before it began', () => {
    const history = [append('c', 'a', 1, 0), tail('c', 1), tail('c', 0)];
    const report = checkHistory(history, finals({ n1: { c: msgs('a') } }));
    expect(report.violations.map((v) => v.kind)).toEqual(['stale-read']);
  });

  it('accepts a read concurrent with an append that does not show it', () => {
    const history = [
      event({ kind: 'append', context: 'c', key: 'a' }, 201, { seq: 1, version: 1 }, { start: 1, end: 10 }),
      event({ kind: 'read', context: 'c', read: 'tail' }, 200, { seq: 0 }, { start: 5, end: 6 }),
    ];
    expect(checkHistory(history, finals({ n1: { c: msgs('a') } })).violations).toEqual([]);
  });

  it('finds duplicates, gaps, phantoms, mismatched acks and diverging replicas', () => {
    const history = [append('c', 'a', 1), append('c', 'b', 2), append('c', 'b', 3, 200)];
    const report = checkHistory(
      history,
      finals({
        n1: { c: [...msgs('a', 'b', 'b'), { id: 'z', seq: 5 }] },
        n2: { c: msgs('a', 'b') },
      }),
    );
    const kinds = new Set(report.violations.map((v) => v.kind));
    expect(kinds).toEqual(new Set(['ack-mismatch', 'gap', 'duplicate', 'phantom', 'divergent']));
  });

  it('finds an if_version append acknowledged at the wrong version', () => {
    const history = [
      event({ kind: 'append', context: 'c', key: 'a', ifVersion: 0 }, 201, { seq: 1, version: 1 }),
      event({ kind: 'append', context: 'c', key: 'b', ifVersion: 0 }, 201, { seq: 2, version: 2 }),
    ];
    const report = checkHistory(history, finals({ n1: { c: msgs('a', 'b') } }));
    expect(report.violations.map((v) => v.kind)).toEqual(['if-version']);
  });

  // A sequential register of appends: a generated run of appends (acked or unanswered) and reads, each
  // seeing the true state, always passes; dropping one acked message from the final state is always
  // a lost write; making one read show one less than the truth, when a write was acked before it,
  // is always a stale read.
  const runs = fc.array(
    fc.record({
      kind: fc.constantFrom('ack', 'ambiguous', 'failed', 'read'),
      ctx: fc.constantFrom('c1', 'c2'),
    }),
    {
      minLength: 1,
      maxLength: 60,
    },
  );
  const simulate = (steps: readonly { kind: string; ctx: string }[]) => {
    const state = new Map<string, string[]>();
    const history: HistoryEvent[] = [];
    steps.forEach((step, i) => {
      const list = state.get(step.ctx) ?? [];
      state.set(step.ctx, list);
      const key = `${step.ctx}-${i}`;
      if (step.kind === 'read') history.push(tail(step.ctx, list.length));
      else if (step.kind === 'failed') history.push(append(step.ctx, key, 0, 503));
      else {
        list.push(key);
        history.push(append(step.ctx, key, list.length, step.kind === 'ack' ? 201 : 0));
      }
    });
    const final: Record<string, FinalMessage[]> = {};
    for (const [ctx, ids] of state) final[ctx] = msgs(...ids);
    return { history, final };
  };

  it('passes every correct generated history', () => {
    fc.assert(
      fc.property(runs, (steps) => {
        const { history, final } = simulate(steps);
        expect(checkHistory(history, finals({ n1: final, n2: final })).violations).toEqual([]);
      }),
    );
  });

  it('finds every lost acknowledged write in generated histories', () => {
    fc.assert(
      fc.property(runs, fc.nat(), (steps, pick) => {
        const { history, final } = simulate(steps);
        const acked = history.filter((e) => e.op.kind === 'append' && e.status === 201);
        fc.pre(acked.length > 0);
        const victim = acked[pick % acked.length] as HistoryEvent;
        const ctx = victim.op.context;
        const kept = (final[ctx] ?? []).filter((m) => m.id !== (victim.op as { key: string }).key);
        const broken = { ...final, [ctx]: kept.map((m, i) => ({ id: m.id, seq: i + 1 })) };
        const kinds = checkHistory(history, finals({ n1: broken })).violations.map((v) => v.kind);
        expect(kinds).toContain('lost');
      }),
    );
  });

  it('finds every stale read in generated histories', () => {
    fc.assert(
      fc.property(runs, fc.nat(), (steps, pick) => {
        const { history, final } = simulate(steps);
        // Reads preceded by an acknowledged append to their context.
        const candidates = history.filter(
          (e, i) =>
            e.op.kind === 'read' &&
            history.slice(0, i).some((a) => a.op.context === e.op.context && a.status === 201),
        );
        fc.pre(candidates.length > 0);
        const victim = candidates[pick % candidates.length] as HistoryEvent;
        const ackedBefore = history
          .slice(0, history.indexOf(victim))
          .filter((a) => a.op.context === victim.op.context && a.status === 201)
          .map((a) => a.observed?.seq ?? 0);
        const floor = Math.max(...ackedBefore);
        const stale = history.map((e) => (e === victim ? { ...e, observed: { seq: floor - 1 } } : e));
        const kinds = checkHistory(stale, finals({ n1: final })).violations.map((v) => v.kind);
        expect(kinds).toContain('stale-read');
      }),
    );
  });
});
