// The archiver on one real node (in this process) against a real PostgreSQL: messages are archived
// with every field, the hot tail is trimmed to tail_keep, and the export and the tail still return
// one continuous history (read-through); writing a batch again adds no row; a Postgres outage during
// appends only grows the lag, which returns to 0 after; a wrong DATABASE_URL is a 503 reason on
// /health/ready without the password, never a crash.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { startNode } from '../../src/node/node.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { writeBatches } from '../../archiver/archive-store.js';
import { startTcpProxy, type TcpProxy } from '../fault/tcp-proxy.js';
import { freePort } from '../e2e/process-harness.js';
import { startTestNode, type TestNode } from '../e2e/node-harness.js';
import { context, eventually, metric } from './node-probes.js';
import { startTestPostgres, type TestPostgres } from './postgres-harness.js';

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
});

const json = { 'content-type': 'application/json' };

const put = async (base: string, id: string): Promise<void> => {
  const response = await fetch(`${base}/v1/contexts/${id}`, {
    method: 'PUT',
    headers: json,
    body: JSON.stringify({ token_budget: 10, policy: { strategy: 'last_n', config: { limit: 2 } } }),
  });
  expect([200, 201]).toContain(response.status);
};

const append = async (base: string, id: string, text: string): Promise<number> => {
  const response = await fetch(`${base}/v1/contexts/${id}/messages`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      // Over the window's threshold alone: every append's policy run leaves only it in the window, so
      // trimming is bounded by tail_keep, not by the window.
      message: {
        role: 'user',
        parts: [{ type: 'text', text: `${text} ${'x'.repeat(40)}` }],
        metadata: { n: text },
      },
    }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { seq: number }).seq;
};

interface Message {
  readonly seq: number;
  readonly id: string;
  readonly parts: unknown;
  readonly inserted_at: string;
}

const exportAll = async (base: string, id: string, pageSize: number): Promise<Message[]> => {
  const all: Message[] = [];
  let from = 0;
  for (let page = 0; page < 1000; page++) {
    const response = await fetch(`${base}/v1/contexts/${id}/messages?from_seq=${from}&limit=${pageSize}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { messages: Message[]; next_from_seq?: number };
    all.push(...body.messages);
    if (body.next_from_seq === undefined) return all;
    from = body.next_from_seq;
  }
  throw new Error('export did not end');
};

const tail = async (base: string, id: string, limit: number, offset: number): Promise<Message[]> => {
  const response = await fetch(`${base}/v1/contexts/${id}/tail?limit=${limit}&offset=${offset}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { messages: Message[] }).messages;
};

const archiverEnv = (url: string, extra: Record<string, string> = {}) => ({
  FASTPACA_ARCHIVER_ENABLED: 'true',
  DATABASE_URL: url,
  FASTPACA_TAIL_KEEP: '3',
  FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS: '100',
  ...extra,
});

describe('archiver on one node', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ env: archiverEnv(pg.url) });
  }, 30_000);
  afterAll(async () => {
    await node?.destroy();
  });

  it('archives every message with its fields, trims to tail_keep, and reads back one history', async () => {
    const id = 'archived-a';
    await put(node.base, id);
    for (let i = 1; i <= 25; i++) await append(node.base, id, `m${i}`);
    const before = await exportAll(node.base, id, 100);
    await eventually(async () => (await context(node.base, id)).archived_seq === 25, 10_000, 'archived 25');

    const rows = await pg.sql<
      {
        seq: string;
        id: string;
        role: string;
        parts: unknown;
        metadata: unknown;
        inserted_at: Date;
        version: string;
      }[]
    >`
      SELECT seq, id, role, parts, metadata, inserted_at, version FROM messages WHERE context_id = ${id} ORDER BY seq`;
    expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(rows.map((row) => row.id)).toEqual(before.map((m) => m.id));
    expect(rows.map((row) => row.parts)).toEqual(before.map((m) => m.parts));
    expect(rows.map((row) => row.inserted_at.toISOString())).toEqual(before.map((m) => m.inserted_at));
    // The version each append produced: increasing with seq (its exact step depends on policy runs).
    const versions = rows.map((row) => Number(row.version));
    expect(versions.every((version, i) => i === 0 || version > (versions[i - 1] ?? 0))).toBe(true);
    const [contextRow] = await pg.sql<{ last_seq: string; archived_seq: string; status: string }[]>`
      SELECT last_seq, archived_seq, status FROM contexts WHERE id = ${id}`;
    expect(contextRow).toMatchObject({ last_seq: '25', archived_seq: '25', status: 'active' });

    // 22 of the 25 left the store (tail_keep 3); reads still see all 25, in order, paged any way.
    expect(await metric(node.base, 'fastpaca_archive_trimmed_total')).toBe(22);
    for (const pageSize of [1, 4, 7, 100]) expect(await exportAll(node.base, id, pageSize)).toEqual(before);
    expect(await tail(node.base, id, 10, 0)).toEqual(before.slice(15));
    expect(await tail(node.base, id, 5, 20)).toEqual(before.slice(0, 5));
    expect(await tail(node.base, id, 6, 1)).toEqual(before.slice(18, 24));
    expect(await tail(node.base, id, 10, 30)).toEqual([]);
    // New appends keep going on from the trimmed state.
    expect(await append(node.base, id, 'm26')).toBe(26);
    expect((await exportAll(node.base, id, 10)).map((m) => m.seq)).toEqual(
      Array.from({ length: 26 }, (_, i) => i + 1),
    );
  }, 30_000);

  it('archives what PostgreSQL cannot store (NUL) as U+FFFD instead of stalling', async () => {
    const id = 'archived-nul';
    await put(node.base, id);
    // (Unpaired surrogates, which PostgreSQL cannot store either, never reach the store: they are
    // refused at the door with 400. The archive's own handling of them is pg-safe-json.test.ts's.)
    const unpaired = `{"message": {"role": "user", "parts": [{"type": "text", "text": "a \\ud800 b"}]}}`;
    const refused = await fetch(`${node.base}/v1/contexts/${id}/messages`, {
      method: 'POST',
      headers: json,
      body: unpaired,
    });
    expect(refused.status).toBe(400);
    const body = `{"message": {"role": "us\\u0000er", "id": "m\\u0000", "parts": [{"type": "text", "text": "a\\u0000b c ${'x'.repeat(40)}"}], "metadata": {"k\\u0000": "v\\u0000"}}}`;
    const response = await fetch(`${node.base}/v1/contexts/${id}/messages`, {
      method: 'POST',
      headers: json,
      body,
    });
    expect(response.status).toBe(201);
    for (let i = 2; i <= 6; i++) await append(node.base, id, `m${i}`);
    await eventually(async () => (await context(node.base, id)).archived_seq === 6, 10_000, 'archived 6');
    const [row] = await pg.sql<{ role: string; id: string; parts: { text: string }[]; metadata: unknown }[]>`
      SELECT role, id, parts, metadata FROM messages WHERE context_id = ${id} AND seq = 1`;
    expect(row?.role).toBe('us\ufffder');
    expect(row?.id).toBe('m\ufffd');
    expect(row?.parts[0]?.text.startsWith('a\ufffdb c')).toBe(true);
    expect(Object.keys(row?.metadata ?? {})).toEqual(['k\ufffd']);
    // Trimmed (tail_keep 3), it reads back from the archive in that form, in an unbroken history.
    const exported = await exportAll(node.base, id, 2);
    expect(exported.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(exported[0]?.id).toBe('m\ufffd');
  }, 30_000);

  it('a batch written again adds no row (idempotent inserts)', async () => {
    const id = 'archived-a';
    const batch = await pg.sql<
      { seq: string }[]
    >`SELECT seq FROM messages WHERE context_id = ${id} ORDER BY seq`;
    const message = (seq: number) => ({
      id: `${id}:${seq}`,
      seq,
      role: 'user',
      parts: [{ type: 'text', text: 'replayed' }],
      metadata: {},
      token_count: 1,
      inserted_at: new Date().toISOString(),
    });
    const view = {
      id,
      status: 'active' as const,
      token_budget: 1000,
      trigger_ratio: 0.7,
      policy: { strategy: 'last_n' as const, config: {} },
      metadata: {},
      version: 1,
      last_seq: 1,
      archived_seq: 0,
      created_at: new Date().toISOString(),
      inserted_at: new Date().toISOString(),
      updated_at: new Date(0).toISOString(),
    };
    const replay = [
      {
        contextId: id,
        rows: [1, 2, 3].map((seq) => ({ message: message(seq), version: seq })),
        context: view,
      },
    ];
    expect(await writeBatches(pg.sql, replay)).toBe(0);
    expect(await writeBatches(pg.sql, replay)).toBe(0);
    const after = await pg.sql<
      { seq: string; parts: unknown }[]
    >`SELECT seq, parts FROM messages WHERE context_id = ${id} ORDER BY seq`;
    expect(after.map((row) => row.seq)).toEqual(batch.map((row) => row.seq));
    // The first write stands; the stale contexts row (older last_seq) did not move it backwards.
    expect(after[0]?.parts).toEqual([{ type: 'text', text: `m1 ${'x'.repeat(40)}` }]);
    const [contextRow] = await pg.sql<{ last_seq: string }[]>`SELECT last_seq FROM contexts WHERE id = ${id}`;
    expect(Number(contextRow?.last_seq)).toBeGreaterThanOrEqual(25);
  });
});

describe('closing a node', () => {
  it('flushes what the archiver has pending before Raft stops', async () => {
    // An interval far beyond the test: only the close's own flush can write these.
    const node = await startTestNode({
      env: archiverEnv(pg.url, { FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS: '600000' }),
    });
    const id = 'flushed-on-close';
    try {
      await put(node.base, id);
      // The first pass (at start) has run once the node is ready; wait a moment for it to finish.
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (let i = 1; i <= 7; i++) await append(node.base, id, `c${i}`);
      const before = await pg.sql`SELECT 1 FROM messages WHERE context_id = ${id}`;
      expect(before).toHaveLength(0);
    } finally {
      await node.destroy();
    }
    const rows = await pg.sql<
      { seq: string }[]
    >`SELECT seq FROM messages WHERE context_id = ${id} ORDER BY seq`;
    expect(rows.map((row) => Number(row.seq))).toEqual([1, 2, 3, 4, 5, 6, 7]);
  }, 30_000);
});

describe('a Postgres outage during appends', () => {
  let node: TestNode;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy({ name: 'pg', listenPort: await freePort(), targetPort: pg.port });
    const url = new URL(pg.url);
    url.port = String(proxy.port);
    node = await startTestNode({
      env: archiverEnv(url.toString(), { FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS: '50' }),
    });
  }, 30_000);
  afterAll(async () => {
    await node?.destroy();
    await proxy?.close();
  });

  it('appends keep succeeding, the lag grows, and returns to 0 once Postgres is back', async () => {
    const id = 'outage-a';
    await put(node.base, id);
    for (let i = 1; i <= 5; i++) await append(node.base, id, `before${i}`);
    await eventually(async () => (await context(node.base, id)).archived_seq === 5, 10_000, 'archived 5');

    proxy.cut(); // a black hole: connections hang, nothing is refused
    const started = Date.now();
    for (let i = 1; i <= 40; i++) await append(node.base, id, `during${i}`);
    // Appends are not held up by the archive (a loose bound: 40 appends, Postgres hanging).
    expect(Date.now() - started).toBeLessThan(10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const during = await context(node.base, id);
    expect(during.last_seq).toBe(45);
    expect(during.archived_seq).toBeLessThan(45);
    expect(await metric(node.base, 'fastpaca_archive_pending_rows')).toBeGreaterThan(0);

    proxy.pass();
    await eventually(
      async () => (await context(node.base, id)).archived_seq === 45,
      60_000,
      'archive caught up after the outage',
    );
    await eventually(
      async () => (await metric(node.base, 'fastpaca_archive_pending_rows')) === 0,
      10_000,
      'pending rows back to 0',
    );
    const rows = await pg.sql<
      { seq: string }[]
    >`SELECT seq FROM messages WHERE context_id = ${id} ORDER BY seq`;
    expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 45 }, (_, i) => i + 1));
  }, 90_000);
});

describe('a wrong DATABASE_URL at start-up', () => {
  it('is one log line and a 503 reason on /health/ready, never with the password; the node keeps serving', async () => {
    const port = await freePort();
    const secret = 'sup3r-secret-pw';
    const dataDir = mkdtempSync(join(tmpdir(), 'fastpaca-archive-'));
    const { config } = loadConfig({
      env: {
        PORT: '0',
        FASTPACA_RAFT_PORT: '0',
        FASTPACA_HOST: '127.0.0.1',
        FASTPACA_RAFT_DATA_DIR: dataDir,
        FASTPACA_TOKEN_ESTIMATOR: 'chars4',
        FASTPACA_TOKENIZER_WORKERS: '1',
        FASTPACA_LOG_LEVEL: 'info',
        ...archiverEnv(`postgres://fastpaca:${secret}@127.0.0.1:${port}/nope`),
      },
    });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((line) => line !== ''),
        );
        done();
      },
    });
    const node = await startNode(config, createLogger({ level: 'info', destination }));
    try {
      const base = `http://127.0.0.1:${node.httpPort}`;
      let reason = '';
      await eventually(
        async () => {
          const response = await fetch(`${base}/health/ready`);
          reason = ((await response.json()) as { reason?: string }).reason ?? '';
          return response.status === 503 && reason.startsWith('archive database unavailable');
        },
        10_000,
        'a 503 naming the archive database',
      );
      expect(reason).not.toContain(secret);
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
      // Retries with backoff go on, but the same failure is logged once.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const archiveLines = lines.filter((line) => line.includes('archive database unavailable'));
      expect(archiveLines).toHaveLength(1);
      expect(lines.join('\n')).not.toContain(secret);
    } finally {
      await node.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
