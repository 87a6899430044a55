// Live streams over history the archiver trimmed, on one real node (in this process) against a real
// PostgreSQL: a subscriber with cursor 0 receives every version from 1, the archived ones read back
// from Postgres, with exactly the frames a subscriber that watched them live received (message,
// policy compaction, window change), no gap and no duplicate, over the websocket and over SSE. With
// Postgres black-holed such a replay closes with 1013 (try again later) while streams from the hot
// tail go on, and the same cursor replays whole once Postgres is back.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../fault/tcp-proxy.js';
import { freePort } from '../e2e/process-harness.js';
import { startTestNode, type TestNode } from '../e2e/node-harness.js';
import { SseClient } from '../stream/sse-client.js';
import { StreamClient, type Frame } from '../stream/stream-client.js';
import { versionProblems } from '../stream/version-checker.js';
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
const tailKeep = 3;

const archiverEnv = (url: string) => ({
  FASTPACA_ARCHIVER_ENABLED: 'true',
  DATABASE_URL: url,
  FASTPACA_TAIL_KEEP: String(tailKeep),
  FASTPACA_ARCHIVE_FLUSH_INTERVAL_MS: '100',
});

const put = async (base: string, id: string): Promise<void> => {
  const response = await fetch(`${base}/v1/contexts/${id}`, {
    method: 'PUT',
    headers: json,
    body: JSON.stringify({ token_budget: 10, policy: { strategy: 'last_n', config: { limit: 2 } } }),
  });
  expect(response.status).toBe(201);
};

/** Each message alone crosses the window's threshold: every append has a policy compaction. */
const append = async (base: string, id: string, n: number): Promise<void> => {
  const response = await fetch(`${base}/v1/contexts/${id}/messages`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      message: {
        role: 'user',
        parts: [{ type: 'text', text: `m${n} ${'x'.repeat(40)}` }],
        metadata: { n },
        id: `${id}-${n}`,
      },
    }),
  });
  expect(response.status).toBe(201);
};

/** Appends 1..count, waits until all are archived and the store trimmed to its tail. */
const appendArchiveAndTrim = async (base: string, id: string, count: number): Promise<number> => {
  await put(base, id);
  for (let n = 1; n <= count; n++) await append(base, id, n);
  await eventually(async () => (await context(base, id)).archived_seq === count, 20_000, `archived ${count}`);
  // The window keeps the newest 2, the archive tail_keep: the store holds count-2.. at most.
  await eventually(
    async () => (await metric(base, 'fastpaca_archive_trimmed_total')) >= count - tailKeep,
    10_000,
    'trimmed to the tail',
  );
  return (await context(base, id)).version;
};

const versioned = (frames: readonly Frame[]): Frame[] =>
  frames.filter((frame) => frame.version !== undefined);

describe('a stream replaying history the archiver trimmed', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startTestNode({ env: archiverEnv(pg.url) });
  }, 30_000);
  afterAll(async () => {
    await node?.destroy();
  });

  it('sends every version from cursor 0, archived ones from Postgres, exactly as they went out live', async () => {
    const id = 'streamed-archive';
    const count = 40;
    // A subscriber that watches everything live: the oracle of what the replay must send.
    const watcher = await StreamClient.connect(node.base, id, { cursor: 0 }).catch(() => undefined);
    expect(watcher).toBeUndefined(); // 404 before the context exists
    await put(node.base, id);
    const live = await StreamClient.connect(node.base, id, { cursor: 0 });
    for (let n = 1; n <= count; n++) await append(node.base, id, n);
    await eventually(async () => (await context(node.base, id)).archived_seq === count, 20_000, 'archived');
    await eventually(
      async () => (await metric(node.base, 'fastpaca_archive_trimmed_total')) >= count - tailKeep,
      10_000,
      'trimmed',
    );
    const last = (await context(node.base, id)).version;
    expect(last).toBe(count);
    await live.untilVersion(last, 10_000);

    const replayed = await StreamClient.connect(node.base, id, { cursor: 0 });
    await replayed.untilVersion(last, 20_000);
    expect(replayed.frames.filter((frame) => frame.type === 'gap')).toEqual([]);
    expect(versionProblems(replayed.frames, 0, last)).toEqual([]);
    // The archived versions carry their policy compaction and window change, as they did live.
    expect(replayed.frames.filter((frame) => frame.type === 'compaction').length).toBeGreaterThanOrEqual(
      count - 1,
    );
    expect(versioned(replayed.frames)).toEqual(versioned(live.frames));
    expect(replayed.frames.filter((frame) => frame.type === 'message').map((frame) => frame.seq)).toEqual(
      Array.from({ length: count }, (_, i) => i + 1),
    );

    // From a cursor inside the archived range, and then live.
    const middle = await StreamClient.connect(node.base, id, { cursor: 17 });
    await middle.untilVersion(last, 20_000);
    expect(versionProblems(middle.frames, 17, last)).toEqual([]);
    await append(node.base, id, count + 1);
    await Promise.all([replayed, middle, live].map((client) => client.untilVersion(last + 1, 10_000)));
    expect(versionProblems(middle.frames, 17, last + 1)).toEqual([]);
    expect(versionProblems(replayed.frames, 0, last + 1)).toEqual([]);

    // The SSE mirror shares the replay: the same frames, ids = versions.
    const sse = await SseClient.connect(`${node.base}/v1/contexts/${id}/events?cursor=0`);
    expect(sse.status).toBe(200);
    await sse.until(
      () => sse.events.some((event) => event.data.version === last + 1),
      20_000,
      'sse caught up',
    );
    const sseFrames = sse.events.map((event) => event.data as Frame);
    expect(sseFrames.filter((frame) => frame.type === 'gap')).toEqual([]);
    expect(versionProblems(sseFrames, 0, last + 1)).toEqual([]);
    expect(versioned(sseFrames)).toEqual(versioned(replayed.frames));
    sse.close();
    for (const client of [live, replayed, middle]) client.close();
  }, 90_000);
});

describe('a stream replaying archived history while Postgres is down', () => {
  let node: TestNode;
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await startTcpProxy({ name: 'pg', listenPort: await freePort(), targetPort: pg.port });
    const url = new URL(pg.url);
    url.port = String(proxy.port);
    node = await startTestNode({ env: archiverEnv(url.toString()) });
  }, 30_000);
  afterAll(async () => {
    await node?.destroy();
    await proxy?.close();
  });

  it('closes with 1013 (nothing sent in part), serves the hot tail meanwhile, and replays whole after', async () => {
    const id = 'streamed-outage';
    const last = await appendArchiveAndTrim(node.base, id, 30);

    proxy.cut(); // a black hole: the read hangs until the reader's timeout
    const refused = await StreamClient.connect(node.base, id, { cursor: 0 });
    const closed = await Promise.race([
      refused.closed,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no close within 30 s')), 30_000)),
    ]);
    expect(closed.code).toBe(1013);
    expect(closed.reason).toContain('archive_unavailable');
    // Whatever it sent before the close are whole versions from 1, without a gap.
    expect(refused.frames.filter((frame) => frame.type === 'gap')).toEqual([]);
    expect(versionProblems(refused.frames, 0, refused.lastVersion)).toEqual([]);

    // A cursor inside the hot tail needs no archive.
    const hot = await StreamClient.connect(node.base, id, { cursor: last - 1 });
    await hot.untilVersion(last, 10_000);
    expect(versionProblems(hot.frames, last - 1, last)).toEqual([]);
    hot.close();

    proxy.pass();
    const resumed = await StreamClient.connect(node.base, id, { cursor: refused.lastVersion });
    await resumed.untilVersion(last, 30_000);
    expect(versionProblems(resumed.frames, refused.lastVersion, last)).toEqual([]);
    resumed.close();
  }, 90_000);
});
