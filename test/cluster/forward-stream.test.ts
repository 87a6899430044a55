// The streamed forwarder against a real gRPC server on 127.0.0.1: every request gets the leader's own
// outcome, however many share a message; and when something goes wrong the caller learns what it may
// conclude: refused before sending (wrong secret, bad request, peer down) is "unsent", written but
// unanswered (leader gone, too slow) is "ambiguous".

import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';

import type { ProposeOutcome } from '../../raft/api.js';
import { createSecretCheck } from '../../net/auth.js';
import type { CommandResult } from '../../src/context/results.js';
import { forwardService } from '../../src/cluster/remote/forward-protocol.js';
import type { LocalPropose } from '../../src/cluster/remote/forward-server.js';
import { createForwardService } from '../../src/cluster/remote/forward-server.js';
import { StreamForwarder } from '../../src/cluster/remote/forward-stream.js';

const SECRET = 'forward-stream-test-secret';

const resultOf = (data: Uint8Array): CommandResult =>
  ({ type: 'delete_context', echo: Buffer.from(data).toString('utf8') }) as unknown as CommandResult;

interface Leader {
  readonly address: string;
  readonly proposed: string[];
  stop(): Promise<void>;
}

const startLeader = async (propose: LocalPropose | undefined, proposed: string[] = []): Promise<Leader> => {
  const server = new Server();
  server.addService(
    forwardService,
    createForwardService({ checkSecret: createSecretCheck(SECRET), propose: () => propose }),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
      error === null ? resolve(bound) : reject(error),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    proposed,
    stop: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
};

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('StreamForwarder', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  const forwarderTo = (address: string, secret = SECRET): StreamForwarder => {
    const forwarder = new StreamForwarder({ clusterSecret: secret, connectTimeoutMs: 2_000 });
    forwarder.setPeers(new Map([['leader', address]]));
    cleanups.push(() => forwarder.close());
    return forwarder;
  };

  it('answers every one of many concurrent forwards with its own outcome', async () => {
    const proposed: string[] = [];
    const leader = await startLeader(async (group, data): Promise<ProposeOutcome<CommandResult>> => {
      proposed.push(`${group}:${Buffer.from(data).toString('utf8')}`);
      if (group === 7) return { ok: false, code: 'NOT_LEADER', leader: 'other' };
      return { ok: true, index: proposed.length, result: resultOf(data) };
    }, proposed);
    cleanups.push(() => leader.stop());
    const forwarder = forwarderTo(leader.address);
    const requests = Array.from({ length: 600 }, (_, i) => ({ group: i % 10, text: `w${i}` }));
    const results = await Promise.all(
      requests.map(({ group, text }) => forwarder.propose('leader', group, bytes(text), 5_000)),
    );
    results.forEach((result, i) => {
      const request = requests[i] as { group: number; text: string };
      if (request.group === 7) {
        expect(result).toEqual({
          kind: 'outcome',
          outcome: { ok: false, code: 'NOT_LEADER', leader: 'other' },
        });
      } else {
        expect(result.kind).toBe('outcome');
        const outcome = result.kind === 'outcome' ? result.outcome : undefined;
        expect(outcome?.ok === true && outcome.result).toEqual(resultOf(bytes(request.text)));
      }
    });
    expect(proposed).toHaveLength(600);
    expect(new Set(proposed).size).toBe(600);
  });

  it('cuts forwards that arrive together into messages the leader accepts, however large they are', async () => {
    // The test server keeps gRPC's default 4 MiB receive limit; together the requests are ~9 MiB.
    const sizes: number[] = [];
    const leader = await startLeader(async (_group, data): Promise<ProposeOutcome<CommandResult>> => {
      sizes.push(data.byteLength);
      return { ok: true, index: sizes.length, result: resultOf(bytes(String(data.byteLength))) };
    });
    cleanups.push(() => leader.stop());
    const forwarder = new StreamForwarder({
      clusterSecret: SECRET,
      connectTimeoutMs: 2_000,
      batchBytesTarget: 1024 * 1024,
    });
    forwarder.setPeers(new Map([['leader', leader.address]]));
    cleanups.push(() => forwarder.close());
    const lengths = [...Array.from({ length: 24 }, () => 300 * 1024), 2 * 1024 * 1024];
    const results = await Promise.all(
      lengths.map((length, i) => forwarder.propose('leader', i % 4, new Uint8Array(length).fill(i), 5_000)),
    );
    results.forEach((result, i) => {
      expect(result.kind).toBe('outcome');
      const outcome = result.kind === 'outcome' ? result.outcome : undefined;
      expect(outcome?.ok === true && outcome.result).toEqual(resultOf(bytes(String(lengths[i]))));
    });
    expect(sizes.sort((x, y) => x - y)).toEqual([...lengths].sort((x, y) => x - y));
  });

  it('reports a wrong secret as unsent, and proposes nothing', async () => {
    const proposed: string[] = [];
    const leader = await startLeader(async (_group, data) => {
      proposed.push(Buffer.from(data).toString('utf8'));
      return { ok: true, index: 1, result: resultOf(data) };
    });
    cleanups.push(() => leader.stop());
    const forwarder = forwarderTo(leader.address, 'not-the-secret');
    const result = await forwarder.propose('leader', 1, bytes('x'), 5_000);
    expect(result.kind).toBe('unsent');
    expect(result.kind !== 'outcome' && result.reason).toContain('UNAUTHENTICATED');
    expect(proposed).toEqual([]);
  });

  it('reports a malformed request as unsent, without proposing it', async () => {
    const proposed: string[] = [];
    const leader = await startLeader(async (_group, data) => {
      proposed.push(Buffer.from(data).toString('utf8'));
      return { ok: true, index: 1, result: resultOf(data) };
    });
    cleanups.push(() => leader.stop());
    const forwarder = forwarderTo(leader.address);
    const [bad, good] = await Promise.all([
      forwarder.propose('leader', 1, new Uint8Array(0), 5_000),
      forwarder.propose('leader', 2, bytes('fine'), 5_000),
    ]);
    expect(bad.kind).toBe('unsent');
    expect(good.kind).toBe('outcome');
    expect(proposed).toEqual(['fine']);
  });

  it('answers NOT_LEADER while the leader host is not open', async () => {
    const leader = await startLeader(undefined);
    cleanups.push(() => leader.stop());
    const result = await forwarderTo(leader.address).propose('leader', 1, bytes('x'), 5_000);
    expect(result).toEqual({ kind: 'outcome', outcome: { ok: false, code: 'NOT_LEADER', leader: null } });
  });

  it('reports a peer that is down as unsent', async () => {
    const leader = await startLeader(undefined);
    const address = leader.address;
    await leader.stop();
    const result = await forwarderTo(address).propose('leader', 1, bytes('x'), 2_000);
    expect(result.kind).toBe('unsent');
  });

  it('reports written but unanswered forwards as ambiguous when the leader goes away', async () => {
    let reachedLeader!: () => void;
    const reached = new Promise<void>((resolve) => (reachedLeader = resolve));
    // A leader that never answers: the proposal is in its hands when it dies.
    const leader = await startLeader(() => {
      reachedLeader();
      return new Promise<ProposeOutcome<CommandResult>>(() => {});
    });
    const forwarder = forwarderTo(leader.address);
    const pending = forwarder.propose('leader', 1, bytes('x'), 5_000);
    await reached;
    await leader.stop();
    const result = await pending;
    expect(result.kind).toBe('ambiguous');
  });

  it('reports a forward the leader does not answer in time as ambiguous', async () => {
    const leader = await startLeader(() => new Promise<ProposeOutcome<CommandResult>>(() => {}));
    cleanups.push(() => leader.stop());
    const started = Date.now();
    const result = await forwarderTo(leader.address).propose('leader', 1, bytes('x'), 100);
    expect(result.kind).toBe('ambiguous');
    // Bounded: the leader's timeout plus the answer slack plus one sweep, not forever.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('redials after the leader restarts on the same port', async () => {
    const answer = async (_group: number, data: Uint8Array): Promise<ProposeOutcome<CommandResult>> => ({
      ok: true,
      index: 1,
      result: resultOf(data),
    });
    const first = await startLeader(answer);
    const forwarder = forwarderTo(first.address);
    expect((await forwarder.propose('leader', 1, bytes('a'), 5_000)).kind).toBe('outcome');
    await first.stop();
    const port = Number(first.address.split(':')[1]);
    const server = new Server();
    server.addService(
      forwardService,
      createForwardService({ checkSecret: createSecretCheck(SECRET), propose: () => answer }),
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (error) =>
        error === null ? resolve() : reject(error),
      ),
    );
    cleanups.push(() => server.forceShutdown());
    let last: unknown;
    for (let attempt = 0; attempt < 100; attempt += 1) {
      last = await forwarder.propose('leader', 1, bytes('b'), 5_000);
      if ((last as { kind: string }).kind === 'outcome') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(last).toMatchObject({ kind: 'outcome', outcome: { ok: true } });
  });
});
