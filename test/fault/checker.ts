// The fault suite's checker: pure functions of a recorded history (recorder.ts) and the final
// message lists every replica holds. It finds
//   - lost:        an acknowledged append (201, or 200 replayed) missing from a replica's final history,
//   - duplicate:   one message id present more than once in a context,
//   - gap:         seqs of a context not exactly 1..n,
//   - ack-mismatch: an acknowledged append whose final seq is not the seq its answer gave,
//   - phantom:     a message id the workload never sent,
//   - stale-read:  a read showing a newest seq or version older than an append acknowledged, or a read
//                  answered, before the read began (reads are linearizable),
//   - if-version:  an acknowledged `if_version` append whose version is not if_version + 1,
//   - divergent:   replicas whose final histories of a context differ.

import type { HistoryEvent } from './recorder.js';
import { isAck, isOkRead } from './recorder.js';

export interface FinalMessage {
  readonly id: string;
  readonly seq: number;
}

/** Per replica (node name), per context, the final history. */
export type FinalStates = ReadonlyMap<string, ReadonlyMap<string, readonly FinalMessage[]>>;

export type ViolationKind =
  'lost' | 'duplicate' | 'gap' | 'ack-mismatch' | 'phantom' | 'stale-read' | 'if-version' | 'divergent';

export interface Violation {
  readonly kind: ViolationKind;
  readonly context: string;
  readonly detail: string;
}

export interface CheckReport {
  readonly violations: readonly Violation[];
  readonly acknowledged: number;
  readonly reads: number;
  readonly contexts: number;
}

const contextsOf = (history: readonly HistoryEvent[], finals: FinalStates): string[] => {
  const contexts = new Set<string>();
  for (const event of history) contexts.add(event.op.context);
  for (const states of finals.values()) for (const context of states.keys()) contexts.add(context);
  return [...contexts].sort();
};

const checkReplica = (
  node: string,
  context: string,
  messages: readonly FinalMessage[],
  acked: ReadonlyMap<string, number>,
  sent: ReadonlySet<string>,
  violations: Violation[],
): void => {
  const seen = new Map<string, number>();
  for (const [i, message] of messages.entries()) {
    if (message.seq !== i + 1) {
      violations.push({
        kind: 'gap',
        context,
        detail: `${node}: position ${i + 1} holds seq ${message.seq}`,
      });
      break;
    }
  }
  for (const message of messages) {
    const before = seen.get(message.id);
    if (before !== undefined) {
      violations.push({
        kind: 'duplicate',
        context,
        detail: `${node}: ${message.id} at seqs ${before} and ${message.seq}`,
      });
    } else {
      seen.set(message.id, message.seq);
    }
    if (!sent.has(message.id)) {
      violations.push({ kind: 'phantom', context, detail: `${node}: ${message.id} was never sent` });
    }
  }
  for (const [id, seq] of acked) {
    const found = seen.get(id);
    if (found === undefined) {
      violations.push({ kind: 'lost', context, detail: `${node}: acknowledged ${id} (seq ${seq}) missing` });
    } else if (found !== seq) {
      violations.push({
        kind: 'ack-mismatch',
        context,
        detail: `${node}: ${id} acknowledged as seq ${seq}, stored as ${found}`,
      });
    }
  }
};

/** Reads that began after an append's ack or a read's answer must not show less than it did. */
const checkReads = (context: string, events: readonly HistoryEvent[], violations: Violation[]): number => {
  interface Floor {
    readonly end: number;
    readonly seq: number;
    readonly version: number;
    readonly what: string;
  }
  const floors: Floor[] = [];
  for (const event of events) {
    const seq = event.observed?.seq ?? 0;
    const version = event.observed?.version ?? 0;
    if (isAck(event) || isOkRead(event)) {
      floors.push({ end: event.end, seq, version, what: `#${event.index} on ${event.node}` });
    }
  }
  floors.sort((a, b) => a.end - b.end);
  const reads = events.filter(isOkRead).sort((a, b) => a.start - b.start);
  let next = 0;
  let best: { seq: number; seqBy: string; version: number; versionBy: string } = {
    seq: 0,
    seqBy: '',
    version: 0,
    versionBy: '',
  };
  for (const read of reads) {
    while (next < floors.length && (floors[next]?.end ?? Infinity) < read.start) {
      const floor = floors[next] as Floor;
      if (floor.seq > best.seq) best = { ...best, seq: floor.seq, seqBy: floor.what };
      if (floor.version > best.version) best = { ...best, version: floor.version, versionBy: floor.what };
      next += 1;
    }
    const seq = read.observed?.seq;
    const version = read.observed?.version;
    if (seq !== undefined && seq < best.seq) {
      violations.push({
        kind: 'stale-read',
        context,
        detail: `read #${read.index} (${read.op.kind === 'read' ? read.op.read : ''} on ${read.node}) saw seq ${seq}, but ${best.seqBy} had seq ${best.seq} before it began`,
      });
    }
    if (version !== undefined && version < best.version) {
      violations.push({
        kind: 'stale-read',
        context,
        detail: `read #${read.index} (${read.op.kind === 'read' ? read.op.read : ''} on ${read.node}) saw version ${version}, but ${best.versionBy} had version ${best.version} before it began`,
      });
    }
  }
  return reads.length;
};

export const checkHistory = (history: readonly HistoryEvent[], finals: FinalStates): CheckReport => {
  const violations: Violation[] = [];
  let acknowledged = 0;
  let reads = 0;
  const contexts = contextsOf(history, finals);
  for (const context of contexts) {
    const events = history.filter((event) => event.op.context === context);
    const sent = new Set<string>();
    const acked = new Map<string, number>();
    for (const event of events) {
      if (event.op.kind !== 'append') continue;
      sent.add(event.op.key);
      if (!isAck(event)) continue;
      const seq = event.observed?.seq;
      if (seq === undefined) continue;
      const before = acked.get(event.op.key);
      if (before !== undefined && before !== seq) {
        violations.push({
          kind: 'ack-mismatch',
          context,
          detail: `${event.op.key} acknowledged as seq ${before} and as seq ${seq}`,
        });
      }
      acked.set(event.op.key, seq);
      if (event.op.ifVersion !== undefined && event.observed?.replayed !== true) {
        if (event.observed?.version !== event.op.ifVersion + 1) {
          violations.push({
            kind: 'if-version',
            context,
            detail: `${event.op.key} with if_version ${event.op.ifVersion} answered version ${event.observed?.version}`,
          });
        }
      }
    }
    acknowledged += acked.size;
    reads += checkReads(context, events, violations);

    let reference: { node: string; key: string } | undefined;
    for (const [node, states] of finals) {
      const messages = states.get(context) ?? [];
      checkReplica(node, context, messages, acked, sent, violations);
      const key = JSON.stringify(messages.map((message) => [message.id, message.seq]));
      if (reference === undefined) reference = { node, key };
      else if (reference.key !== key) {
        violations.push({
          kind: 'divergent',
          context,
          detail: `${node} and ${reference.node} hold different histories`,
        });
      }
    }
  }
  return { violations, acknowledged, reads, contexts: contexts.length };
};

export const summarize = (report: CheckReport): string => {
  const counts = new Map<ViolationKind, number>();
  for (const violation of report.violations)
    counts.set(violation.kind, (counts.get(violation.kind) ?? 0) + 1);
  const parts = [...counts].map(([kind, count]) => `${kind}=${count}`);
  const first = report.violations
    .slice(0, 5)
    .map((violation) => `  ${violation.kind} ${violation.context}: ${violation.detail}`);
  return [
    `${report.contexts} contexts, ${report.acknowledged} acknowledged appends, ${report.reads} reads; violations: ${parts.length === 0 ? 'none' : parts.join(' ')}`,
    ...first,
  ].join('\n');
};
