// Online snapshots and volume snapshots of one real node (the built binary):
//   - `fastpaca snapshot create` while writers append: restored into a new data directory, the node
//     serves every message acknowledged before the snapshot started, nothing that was never sent,
//     seqs contiguous; a message acknowledged after it finished is not required.
//   - `snapshot restore` refuses a damaged or truncated file and a non-empty data directory (its
//     contents untouched), and `snapshot create` needs the API key when the node has one.
//   - A volume snapshot: SIGSTOP, copy the data directory, SIGCONT; a node started on the copy
//     serves everything acknowledged before the freeze.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runFastpaca } from '../cluster/cluster-harness.js';
import { killAllProcessNodes, startProcessNode, type ProcessNode } from './process-harness.js';

const apiKey = 'snapshot-test-key-0123456789';
const contexts = ['snap-0', 'snap-1', 'snap-2', 'snap-3'];
const auth = { authorization: `Bearer ${apiKey}` };

interface Sent {
  readonly context: string;
  readonly id: string;
  /** performance.now() when the 201 arrived. */
  ackedAt?: number;
}

const append = async (node: ProcessNode, sent: Sent): Promise<boolean> => {
  try {
    const response = await fetch(`${node.base}/v1/contexts/${sent.context}/messages`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': sent.id },
      body: JSON.stringify({
        message: {
          id: sent.id,
          role: 'user',
          parts: [{ type: 'text', text: `${sent.id} ${'x'.repeat(200)}` }],
        },
      }),
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status === 201 || response.status === 200;
  } catch {
    return false;
  }
};

/** Every message any test sent to the node, with its ack time: the histories hold all of them. */
const sent: Sent[] = [];

/** Writers appending until stopped; every message sent is remembered, with its ack time. */
const startWriters = (node: ProcessNode, writers: number, run: string) => {
  let acked = 0;
  let stop = false;
  const loops = Array.from({ length: writers }, async (_, w) => {
    for (let n = 0; !stop && n < 100_000; n += 1) {
      const message: Sent = { context: contexts[(w + n) % contexts.length] ?? '', id: `${run}-w${w}-m${n}` };
      sent.push(message);
      if (await append(node, message)) {
        message.ackedAt = performance.now();
        acked += 1;
      }
    }
  });
  return {
    acked: () => acked,
    stop: async () => {
      stop = true;
      await Promise.all(loops);
    },
  };
};

const exportIds = async (node: ProcessNode, context: string): Promise<{ id: string; seq: number }[]> => {
  const messages: { id: string; seq: number }[] = [];
  let fromSeq = 0;
  for (let page = 0; page < 1_000; page += 1) {
    const response = await fetch(
      `${node.base}/v1/contexts/${context}/messages?from_seq=${fromSeq}&limit=1000`,
      {
        headers: auth,
      },
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      messages: { id: string; seq: number }[];
      next_from_seq?: number;
    };
    messages.push(...body.messages.map(({ id, seq }) => ({ id, seq })));
    if (body.next_from_seq === undefined) return messages;
    fromSeq = body.next_from_seq;
  }
  throw new Error('export did not end');
};

/** Every message acknowledged before `before` is there; every one there was sent; seqs 1..n. */
const expectHistory = async (node: ProcessNode, sent: readonly Sent[], before: number): Promise<number> => {
  const sentIds = new Set(sent.map((message) => message.id));
  let present = 0;
  for (const context of contexts) {
    const history = await exportIds(node, context);
    expect(history.map((message) => message.seq)).toEqual(history.map((_, i) => i + 1));
    const ids = new Set(history.map((message) => message.id));
    expect(ids.size).toBe(history.length);
    for (const id of ids) expect(sentIds.has(id), `${id} was never sent`).toBe(true);
    for (const message of sent) {
      if (message.context === context && message.ackedAt !== undefined && message.ackedAt < before)
        expect(ids.has(message.id), `acknowledged ${message.id} missing`).toBe(true);
    }
    present += history.length;
  }
  return present;
};

const env = { FASTPACA_API_KEY: apiKey };

describe('online and volume snapshots of one node', () => {
  let root: string;
  let node: ProcessNode;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fastpaca-snapshot-'));
    node = await startProcessNode({ dataDir: join(root, 'live'), env });
    for (const context of contexts) {
      const response = await fetch(`${node.base}/v1/contexts/${context}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ token_budget: 1_000_000 }),
      });
      expect(response.status).toBe(201);
    }
  }, 60_000);

  afterAll(() => {
    killAllProcessNodes();
    rmSync(root, { recursive: true, force: true });
  });

  it('snapshot create during writes, restore, start: every message acknowledged before it is served', async () => {
    const writers = startWriters(node, 6, 'online');
    for (let i = 0; i < 200 && writers.acked() < 300; i += 1) await new Promise((r) => setTimeout(r, 50));
    const out = join(root, 'online.snapshot');
    const started = performance.now();
    const created = await runFastpaca(
      ['snapshot', 'create', '--url', node.base, '--out', out, '--api-key', apiKey],
      60_000,
    );
    const finished = performance.now();
    await writers.stop();
    expect(created.code, created.stderr).toBe(0);
    const summary = JSON.parse(created.stdout.trim().split('\n').at(-1) ?? '{}') as {
      sha256: string;
      pairs: number;
    };
    expect(summary.pairs).toBeGreaterThan(0);
    expect(readFileSync(`${out}.sha256`, 'utf8')).toContain(summary.sha256);
    // Writes went on while the snapshot was taken.
    const ackedDuring = sent.filter(
      (m) => m.ackedAt !== undefined && m.ackedAt > started && m.ackedAt < finished,
    ).length;
    expect(ackedDuring).toBeGreaterThan(0);

    const restoredDir = join(root, 'restored');
    const restored = await runFastpaca(['snapshot', 'restore', out, '--data-dir', restoredDir], 60_000);
    expect(restored.code, restored.stderr).toBe(0);
    const copy = await startProcessNode({ dataDir: restoredDir, env });
    try {
      // Everything acknowledged before the snapshot started; nothing invented; seqs contiguous.
      // (What was acknowledged during it may or may not be there; after it, it is not required.)
      const present = await expectHistory(copy, sent, started);
      const live = await expectHistory(node, sent, performance.now());
      expect(live).toBeGreaterThanOrEqual(present);
    } finally {
      await copy.kill('SIGTERM');
    }
  }, 120_000);

  it('restore refuses a damaged or truncated file and a non-empty data directory; create needs the API key', async () => {
    const out = join(root, 'good.snapshot');
    expect(
      (
        await runFastpaca(
          ['snapshot', 'create', '--url', node.base, '--out', out, '--api-key', apiKey],
          60_000,
        )
      ).code,
    ).toBe(0);
    const noKey = await runFastpaca(
      ['snapshot', 'create', '--url', node.base, '--out', join(root, 'nokey.snapshot')],
      30_000,
      {},
    );
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('401');
    expect(readdirSync(root)).not.toContain('nokey.snapshot');

    const bytes = readFileSync(out);
    const damaged = Buffer.from(bytes);
    const middle = Math.floor(damaged.length / 2);
    damaged[middle] = (damaged[middle] ?? 0) ^ 0xff;
    writeFileSync(join(root, 'damaged.snapshot'), damaged);
    writeFileSync(join(root, 'truncated.snapshot'), bytes.subarray(0, bytes.length - 10));
    for (const name of ['damaged.snapshot', 'truncated.snapshot']) {
      const target = join(root, `never-${name}`);
      const refused = await runFastpaca(
        ['snapshot', 'restore', join(root, name), '--data-dir', target],
        30_000,
      );
      expect(refused.code, name).toBe(1);
      expect(refused.stderr).toMatch(/corrupt/);
      expect(readdirSync(root)).not.toContain(`never-${name}`);
    }

    const occupied = join(root, 'occupied');
    cpSync(join(root, 'restored'), occupied, { recursive: true });
    const before = readdirSync(occupied).sort();
    const notEmpty = await runFastpaca(['snapshot', 'restore', out, '--data-dir', occupied], 30_000);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toContain('not empty');
    expect(readdirSync(occupied).sort()).toEqual(before);
    const forced = await runFastpaca(['snapshot', 'restore', out, '--data-dir', occupied, '--force'], 30_000);
    expect(forced.code, forced.stderr).toBe(0);

    const live = await runFastpaca(
      ['snapshot', 'restore', out, '--data-dir', node.dataDir, '--force'],
      30_000,
    );
    expect(live.code).toBe(1);
    expect(live.stderr).toContain('stop it first');
  }, 120_000);

  it('volume snapshot: freeze, copy the data directory, resume; a node on the copy has everything acknowledged before the freeze', async () => {
    const writers = startWriters(node, 6, 'volume');
    for (let i = 0; i < 200 && writers.acked() < 300; i += 1) await new Promise((r) => setTimeout(r, 50));
    process.kill(node.pid, 'SIGSTOP');
    const frozenAt = performance.now();
    const copyDir = join(root, 'volume-copy');
    try {
      cpSync(node.dataDir, copyDir, { recursive: true });
    } finally {
      process.kill(node.pid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 500));
    await writers.stop();
    // The copy holds the LevelDB lock file of a process that is not running on it: as after a crash.
    const copy = await startProcessNode({ dataDir: copyDir, env });
    try {
      const present = await expectHistory(copy, sent, frozenAt);
      expect(present).toBeGreaterThan(0);
    } finally {
      await copy.kill('SIGTERM');
    }
  }, 120_000);
});
