// Crash durability of the real binary: concurrent appends (some with Idempotency-Key, some client
// token counts) and compactions stream into several contexts; the process is SIGKILLed while
// requests are still in flight, restarted on the same data directory, and the stored history is
// checked against every answer the clients saw. Three kill/restart rounds in one test.
//
// What must hold after each restart, per context:
//   - seqs are exactly 1..last_seq, and every stored message is one a client sent, at most once;
//   - every acknowledged append is there with its seq, token_count, inserted_at and content;
//   - an append whose answer was lost is either there in full or absent, never partial;
//   - version >= the newest acknowledged version, and version - last_seq is the number of
//     compactions applied (between the acknowledged and the attempted ones);
//   - a retried Idempotency-Key replays the original answer, whether it was acknowledged or not.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { killAllProcessNodes, startProcessNode, type ProcessNode } from './process-harness.js';

const contextIds = ['dur-0', 'dur-1', 'dur-2', 'dur-3', 'dur-4', 'dur-5'] as const;
const workers = 12;
const rounds = 3;
/** Acknowledged appends per round before the kill: 3 × 100 = 300 in all. */
const acksBeforeKill = 100;
const opsPerWorkerMax = 200;

interface AppendAttempt {
  readonly contextId: string;
  readonly text: string;
  readonly key: string | undefined;
  readonly clientTokens: number | undefined;
  /** The exact message sent: a retry resends it unchanged, as a real client would. */
  readonly message: object;
  /** lost: the answer never came; absent: lost, and not in the store after the restart. */
  outcome: 'pending' | 'acked' | 'lost' | 'absent';
  ack?: { readonly seq: number; readonly version: number; readonly token_estimate: number };
  /** Read back right after the ack, before the kill. */
  insertedAt?: string | undefined;
}

interface ContextLedger {
  readonly appends: Map<string, AppendAttempt>;
  /** A last_n policy run also counts as a compaction (version +1); manual never runs one. */
  readonly policyRuns: boolean;
  /** Since the last verification. */
  compactionsAttempted: number;
  compactionsAcked: number;
  /** version - last_seq at the last verification. */
  compactionsBefore: number;
  maxAckedVersion: number;
}

interface StoredMessage {
  readonly id: string;
  readonly seq: number;
  readonly role: string;
  readonly parts: readonly { readonly type: string; readonly text?: string }[];
  readonly metadata: Record<string, unknown>;
  readonly token_count: number;
  readonly inserted_at: string;
}

/** Even contexts use last_n with a small limit (policies fire), odd ones manual. */
const policyOf = (index: number): object =>
  index % 2 === 0 ? { strategy: 'last_n', config: { limit: 5 } } : { strategy: 'manual', config: {} };

const ledgers = new Map<string, ContextLedger>(
  contextIds.map((id, index) => [
    id,
    {
      appends: new Map(),
      policyRuns: index % 2 === 0,
      compactionsAttempted: 0,
      compactionsAcked: 0,
      compactionsBefore: 0,
      maxAckedVersion: 0,
    },
  ]),
);

const ledger = (contextId: string): ContextLedger => {
  const found = ledgers.get(contextId);
  if (found === undefined) throw new Error(`no ledger for ${contextId}`);
  return found;
};

/** The chars4 estimator: max(1, ceil(chars / 4)) per part (the texts here are ASCII). */
const chars4 = (text: string): number => Math.max(1, Math.ceil(text.length / 4));

const expectedTokens = (attempt: AppendAttempt): number => attempt.clientTokens ?? chars4(attempt.text);

const json = { 'content-type': 'application/json' };

/** A read that may hit a connection the restarted node no longer has: retried, bounded. */
const readJson = async (url: string): Promise<{ status: number; body: unknown }> => {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body: unknown = await response.json();
      return { status: response.status, body };
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw lastError;
};

const exportAll = async (base: string, contextId: string): Promise<StoredMessage[]> => {
  const messages: StoredMessage[] = [];
  let fromSeq = 0;
  for (let page = 0; page < 100; page++) {
    const { status, body } = await readJson(
      `${base}/v1/contexts/${contextId}/messages?from_seq=${fromSeq}&limit=1000`,
    );
    expect(status).toBe(200);
    const result = body as { messages: StoredMessage[]; next_from_seq?: number };
    messages.push(...result.messages);
    if (result.next_from_seq === undefined) return messages;
    fromSeq = result.next_from_seq;
  }
  throw new Error('export did not end within 100 pages');
};

interface RoundStats {
  acked: number;
  inFlight: number;
  inFlightAtKill: number;
  lost: number;
  killed: boolean;
}

/** Streams appends and compactions until `acksBeforeKill` appends are acknowledged, then SIGKILLs. */
const streamUntilKill = async (node: ProcessNode, round: number): Promise<RoundStats> => {
  const stats: RoundStats = { acked: 0, inFlight: 0, inFlightAtKill: 0, lost: 0, killed: false };
  const kill = (): void => {
    if (stats.killed) return;
    stats.killed = true;
    stats.inFlightAtKill = stats.inFlight;
    // Synchronously, from inside a response callback: other requests are on the wire right now.
    process.kill(node.pid, 'SIGKILL');
  };

  const worker = async (index: number): Promise<void> => {
    for (let op = 0; op < opsPerWorkerMax && !stats.killed; op++) {
      const contextId = contextIds[(index + op) % contextIds.length] ?? 'dur-0';
      const book = ledger(contextId);
      if (op % 17 === 5) {
        book.compactionsAttempted += 1;
        stats.inFlight += 1;
        try {
          const response = await fetch(`${node.base}/v1/contexts/${contextId}/compact`, {
            method: 'POST',
            headers: json,
            body: JSON.stringify({
              replacement: [
                { role: 'system', parts: [{ type: 'text', text: `summary r${round} w${index} ${op}` }] },
              ],
            }),
          });
          const body = (await response.json()) as { version: number };
          expect(response.status).toBe(200);
          book.compactionsAcked += 1;
          book.maxAckedVersion = Math.max(book.maxAckedVersion, body.version);
        } catch (error) {
          if (!stats.killed) throw error;
        } finally {
          stats.inFlight -= 1;
        }
        continue;
      }
      const text = `r${round}-w${index}-op${op} ${'lorem ipsum '.repeat(op % 7)}`;
      const clientTokens = op % 5 === 0 ? 1000 + op : undefined;
      const message = {
        role: op % 2 === 0 ? 'user' : 'assistant',
        parts: [{ type: 'text', text }],
        ...(clientTokens === undefined ? {} : { token_count: clientTokens }),
      };
      const attempt: AppendAttempt = {
        contextId,
        text,
        key: op % 3 === 0 ? `key-r${round}-w${index}-op${op}` : undefined,
        clientTokens,
        message,
        outcome: 'pending',
      };
      book.appends.set(text, attempt);
      let seq = 0;
      stats.inFlight += 1;
      try {
        const response = await fetch(`${node.base}/v1/contexts/${contextId}/messages`, {
          method: 'POST',
          headers: attempt.key === undefined ? json : { ...json, 'idempotency-key': attempt.key },
          body: JSON.stringify({ message }),
        });
        const body = (await response.json()) as { seq: number; version: number; token_estimate: number };
        expect(response.status, JSON.stringify(body)).toBe(201);
        attempt.outcome = 'acked';
        attempt.ack = body;
        seq = body.seq;
        book.maxAckedVersion = Math.max(book.maxAckedVersion, body.version);
        stats.acked += 1;
        if (stats.acked >= acksBeforeKill) kill();
      } catch (error) {
        if (!stats.killed) throw error;
        attempt.outcome = 'lost';
        stats.lost += 1;
        continue;
      } finally {
        stats.inFlight -= 1;
      }
      // The exact stored timestamp, read before the crash.
      try {
        const response = await fetch(
          `${node.base}/v1/contexts/${contextId}/messages?from_seq=${seq - 1}&limit=1`,
        );
        const page = (await response.json()) as { messages: StoredMessage[] };
        const stored = page.messages[0];
        expect(stored?.seq).toBe(seq);
        expect(stored?.parts).toEqual([{ type: 'text', text }]);
        attempt.insertedAt = stored?.inserted_at;
      } catch (error) {
        if (!stats.killed) throw error;
      }
    }
  };

  await Promise.all(Array.from({ length: workers }, (_, index) => worker(index)));
  return stats;
};

/** Checks every context against the ledger, then retries keys whose answer was lost. */
const verify = async (node: ProcessNode): Promise<void> => {
  for (const contextId of contextIds) {
    const book = ledger(contextId);
    const where = (detail: string): string => `${contextId}: ${detail}`;
    const { status, body } = await readJson(`${node.base}/v1/contexts/${contextId}`);
    expect(status).toBe(200);
    const context = body as { version: number; last_seq: number };
    const messages = await exportAll(node.base, contextId);

    expect(
      messages.map((message) => message.seq),
      where('seqs 1..last_seq'),
    ).toEqual(Array.from({ length: context.last_seq }, (_, i) => i + 1));
    const seen = new Set<string>();
    for (const message of messages) {
      expect(message.parts.length, where(`seq ${message.seq} parts`)).toBe(1);
      const text = message.parts[0]?.text ?? '';
      const attempt = book.appends.get(text);
      expect(attempt, where(`seq ${message.seq} is a message a client sent: ${text}`)).toBeDefined();
      expect(attempt?.outcome, where(`"${text}" was absent after an earlier restart`)).not.toBe('absent');
      expect(seen.has(text), where(`"${text}" stored once`)).toBe(false);
      seen.add(text);
      if (attempt === undefined) continue;
      // Present means complete, acknowledged or not.
      expect(message.parts, where(`"${text}" parts`)).toEqual([{ type: 'text', text }]);
      expect(message.token_count, where(`"${text}" token_count`)).toBe(expectedTokens(attempt));
      expect(message.id).toBe(`${contextId}:${message.seq}`);
      expect(message.inserted_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      if (attempt.outcome === 'acked') {
        expect(message.seq, where(`"${text}" seq`)).toBe(attempt.ack?.seq);
        expect(message.token_count).toBe(attempt.ack?.token_estimate);
        if (attempt.insertedAt !== undefined) {
          expect(message.inserted_at, where(`"${text}" inserted_at`)).toBe(attempt.insertedAt);
        }
      } else {
        // A lost answer whose append did land: from now on it is as good as acknowledged.
        attempt.insertedAt = message.inserted_at;
      }
    }
    for (const attempt of book.appends.values()) {
      if (attempt.outcome === 'acked')
        expect(seen.has(attempt.text), where(`acked "${attempt.text}"`)).toBe(true);
    }

    expect(context.version, where('version covers every acknowledged write')).toBeGreaterThanOrEqual(
      book.maxAckedVersion,
    );
    // version = appends + compactions: the compactions applied since the last check lie between the
    // acknowledged and the attempted ones (plus any policy runs on last_n contexts).
    const compactions = context.version - context.last_seq;
    const applied = compactions - book.compactionsBefore;
    expect(applied, where('compactions applied')).toBeGreaterThanOrEqual(book.compactionsAcked);
    if (!book.policyRuns) {
      expect(applied, where('compactions applied')).toBeLessThanOrEqual(book.compactionsAttempted);
    }
    book.compactionsBefore = compactions;
    book.compactionsAcked = 0;
    book.compactionsAttempted = 0;

    await retryLostKeys(node, contextId, messages);
  }
};

/**
 * A client whose answer was lost retries with the same Idempotency-Key: it must get the original
 * answer (200, Idempotent-Replayed) when the append landed, and a fresh append (201) when it did not.
 * Acknowledged keys replay their original answer too.
 */
const retryLostKeys = async (node: ProcessNode, contextId: string, stored: readonly StoredMessage[]) => {
  const book = ledger(contextId);
  const bySeqText = new Map(stored.map((message) => [message.parts[0]?.text ?? '', message]));
  const keyed = [...book.appends.values()].filter((attempt) => attempt.key !== undefined);
  for (const attempt of keyed) {
    if (attempt.outcome === 'pending') continue;
    const landed = bySeqText.get(attempt.text);
    const response = await fetch(`${node.base}/v1/contexts/${contextId}/messages`, {
      method: 'POST',
      headers: { ...json, 'idempotency-key': attempt.key ?? '' },
      body: JSON.stringify({ message: attempt.message }),
    });
    const body = (await response.json()) as { seq: number; version: number; token_estimate: number };
    const where = `${contextId} retry of "${attempt.text}" (${attempt.outcome}): ${JSON.stringify(body)}`;
    if (attempt.outcome === 'acked') {
      expect(response.status, where).toBe(200);
      expect(response.headers.get('idempotent-replayed'), where).toBe('true');
      expect(body, where).toEqual(attempt.ack);
    } else if (landed !== undefined) {
      expect(response.status, where).toBe(200);
      expect(body.seq, where).toBe(landed.seq);
      expect(body.token_estimate, where).toBe(landed.token_count);
      attempt.outcome = 'acked';
      attempt.ack = body;
    } else {
      expect(response.status, where).toBe(201);
      attempt.outcome = 'acked';
      attempt.ack = body;
      book.maxAckedVersion = Math.max(book.maxAckedVersion, body.version);
      const read = await readJson(
        `${node.base}/v1/contexts/${contextId}/messages?from_seq=${body.seq - 1}&limit=1`,
      );
      attempt.insertedAt = (read.body as { messages: StoredMessage[] }).messages[0]?.inserted_at;
    }
  }
  // A lost unkeyed append is settled now: present (and checked like an acknowledged one from here
  // on) or absent, and then it must never appear later.
  for (const [text, attempt] of book.appends) {
    if (attempt.outcome !== 'lost') continue;
    const landed = bySeqText.get(text);
    if (landed === undefined) {
      attempt.outcome = 'absent';
    } else {
      attempt.outcome = 'acked';
      attempt.ack = { seq: landed.seq, version: 0, token_estimate: landed.token_count };
    }
  }
};

describe('durability of the real binary under SIGKILL', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-durability-'));

  afterAll(() => {
    killAllProcessNodes();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write, and nothing partial, across 3 SIGKILL/restart rounds', async () => {
    let node = await startProcessNode({ dataDir });
    const { port, raftPort } = node;
    for (const [index, contextId] of contextIds.entries()) {
      const policy = policyOf(index);
      const response = await fetch(`${node.base}/v1/contexts/${contextId}`, {
        method: 'PUT',
        headers: json,
        body: JSON.stringify({ token_budget: 2_000, policy }),
      });
      expect(response.status).toBe(201);
    }

    for (let round = 0; round < rounds; round++) {
      const stats = await streamUntilKill(node, round);
      expect(stats.killed, 'the kill happened').toBe(true);
      expect(stats.inFlightAtKill, 'requests were in flight at the kill').toBeGreaterThan(0);
      const exit = await node.kill('SIGKILL');
      expect(exit.signal).toBe('SIGKILL');
      // Same data directory and ports: the same node comes back.
      node = await startProcessNode({ dataDir, port, raftPort });
      await verify(node);
    }
    await node.kill('SIGTERM');
  }, 60_000);
});
