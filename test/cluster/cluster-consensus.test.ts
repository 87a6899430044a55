// The cluster Consensus against a scripted host and forwarder: writes go to the leader wherever it
// is; attempts that certainly did not enter a log (NOT_LEADER, an unsent forward) are retried until
// a leader accepts; an attempt that may have entered a log (a cut-off forward, a local timeout) is
// never retried (that would duplicate it); a group leaderless for longer than leaderWaitMs fails at
// once. Also: the forwarding wire format round-trips outcomes, and a real gRPC forward to a server
// with another secret is refused before anything is proposed.

import { afterEach, describe, expect, it } from 'vitest';

import type { ConsensusHost, GroupKv, ProposeOutcome, ReadOutcome } from '../../raft/api.js';
import type { GroupId, NodeId } from '../../raft/core/types.js';
import { createGrpcTransport, type GrpcTransport } from '../../raft/transport/grpc-transport.js';
import { createSecretCheck } from '../../net/auth.js';
import { createClusterConsensus } from '../../src/cluster/remote/cluster-consensus.js';
import type { ForwardResult, Forwarder } from '../../src/cluster/remote/forward-client.js';
import { StreamForwarder } from '../../src/cluster/remote/forward-stream.js';
import {
  decodeForwardOutcome,
  decodeForwardRequest,
  encodeForwardOutcome,
  encodeForwardRequest,
  forwardService,
} from '../../src/cluster/remote/forward-protocol.js';
import { createForwardService } from '../../src/cluster/remote/forward-server.js';
import type { Command } from '../../src/context/commands.js';
import type { CommandResult } from '../../src/context/results.js';

const appendResult: CommandResult = {
  type: 'append',
  seq: 7,
  version: 7,
  token_estimate: 3,
  replayed: false,
};
const command: Command = { type: 'delete_context', contextId: 'c', now: '2026-01-01T00:00:00.000Z' };

interface Script {
  leader: NodeId | null;
  local: (() => ProposeOutcome<CommandResult>)[];
  forwarded: (() => ForwardResult)[];
}

const scripted = (script: Script) => {
  const calls = { local: 0, forwarded: [] as NodeId[] };
  const emptyKv: GroupKv = {
    get: () => Promise.resolve(undefined),
    iterate: async function* () {
      // Nothing stored.
    },
  };
  const host: ConsensusHost<CommandResult> = {
    propose: () => {
      calls.local += 1;
      const next = script.local.shift();
      return Promise.resolve(next === undefined ? { ok: false, code: 'NOT_LEADER', leader: null } : next());
    },
    readIndex: (): Promise<ReadOutcome> => Promise.resolve({ ok: true, index: 1 }),
    leaderOf: () => script.leader,
    status: () => undefined,
    groups: () => [0],
    changeMembership: () => Promise.resolve({ ok: false, code: 'NOT_LEADER', leader: null }),
    transferLeader: () => undefined,
    groupKv: () => emptyKv,
  };
  const forwarder: Forwarder = {
    propose: (peer: NodeId, _group: GroupId) => {
      calls.forwarded.push(peer);
      const next = script.forwarded.shift();
      return Promise.resolve(
        next === undefined ? { kind: 'unsent', reason: 'No connection established' } : next(),
      );
    },
  };
  const consensus = createClusterConsensus({
    nodeId: 'self',
    host,
    forwarder,
    proposeTimeoutMs: 2_000,
    readTimeoutMs: 2_000,
    leaderWaitMs: 300,
    retryDelayMs: 5,
  });
  return { consensus, calls };
};

describe('cluster consensus', () => {
  it('forwards a write for a group placed elsewhere to its replicas, then straight to the leader they name', async () => {
    const forwarded: NodeId[] = [];
    let localProposals = 0;
    const noKv: GroupKv = {
      get: () => Promise.resolve(undefined),
      iterate: async function* () {
        // Nothing stored.
      },
    };
    const host: ConsensusHost<CommandResult> = {
      propose: () => {
        localProposals += 1;
        return Promise.resolve({ ok: false, code: 'NO_GROUP' });
      },
      readIndex: (): Promise<ReadOutcome> => Promise.resolve({ ok: false, code: 'NO_GROUP' }),
      leaderOf: () => null,
      status: () => undefined,
      groups: () => [],
      changeMembership: () => Promise.resolve({ ok: false, code: 'NO_GROUP' }),
      transferLeader: () => undefined,
      groupKv: () => noKv,
    };
    const forwarder: Forwarder = {
      propose: (peer: NodeId) => {
        forwarded.push(peer);
        if (peer === 'c')
          return Promise.resolve({ kind: 'outcome', outcome: { ok: true, index: 4, result: appendResult } });
        return Promise.resolve({ kind: 'outcome', outcome: { ok: false, code: 'NOT_LEADER', leader: 'c' } });
      },
    };
    const consensus = createClusterConsensus({
      nodeId: 'self',
      host,
      forwarder,
      proposeTimeoutMs: 2_000,
      readTimeoutMs: 2_000,
      leaderWaitMs: 300,
      retryDelayMs: 5,
      replicasOf: () => ['b', 'c', 'self'],
    });
    expect(await consensus.propose(7, command)).toMatchObject({ ok: true, index: 4 });
    expect(forwarded.at(-1)).toBe('c');
    expect(forwarded).not.toContain('self');
    forwarded.length = 0;
    expect(await consensus.propose(7, command)).toMatchObject({ ok: true, index: 4 });
    expect(forwarded).toEqual(['c']);
    expect(localProposals).toBe(0);
    // Reads are served from local state only: a group placed elsewhere answers at once.
    const startedAt = Date.now();
    expect(await consensus.read(7)).toMatchObject({ ok: false, code: 'NO_GROUP' });
    expect(Date.now() - startedAt).toBeLessThan(500);
  });

  it('proposes locally when this node leads', async () => {
    const { consensus, calls } = scripted({
      leader: 'self',
      local: [() => ({ ok: true, index: 3, result: appendResult })],
      forwarded: [],
    });
    expect(await consensus.propose(0, command)).toEqual({ ok: true, index: 3, result: appendResult });
    expect(calls).toEqual({ local: 1, forwarded: [] });
  });

  it('forwards to the leader and retries after NOT_LEADER until the new leader accepts', async () => {
    const script: Script = {
      leader: 'b',
      local: [() => ({ ok: true, index: 9, result: appendResult })],
      forwarded: [
        () => ({ kind: 'unsent', reason: 'No connection established' }),
        () => {
          script.leader = 'self';
          return { kind: 'outcome', outcome: { ok: false, code: 'NOT_LEADER', leader: 'self' } };
        },
      ],
    };
    const { consensus, calls } = scripted(script);
    expect(await consensus.propose(0, command)).toMatchObject({ ok: true, index: 9 });
    expect(calls).toEqual({ local: 1, forwarded: ['b', 'b'] });
  });

  it('never retries an attempt that may have been proposed', async () => {
    const ambiguous = scripted({
      leader: 'b',
      local: [],
      forwarded: [() => ({ kind: 'ambiguous', reason: 'Connection dropped' })],
    });
    expect(await ambiguous.consensus.propose(0, command)).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(ambiguous.calls.forwarded).toHaveLength(1);

    const timedOut = scripted({
      leader: 'self',
      local: [() => ({ ok: false, code: 'TIMEOUT' })],
      forwarded: [],
    });
    expect(await timedOut.consensus.propose(0, command)).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(timedOut.calls.local).toBe(1);
  });

  it('fails at once when the group has been leaderless longer than leaderWaitMs', async () => {
    const { consensus } = scripted({ leader: null, local: [], forwarded: [] });
    const first = Date.now();
    expect(await consensus.propose(0, command)).toMatchObject({ ok: false, code: 'NOT_LEADER' });
    const waitedMs = Date.now() - first;
    expect(waitedMs).toBeGreaterThanOrEqual(250);
    expect(waitedMs).toBeLessThan(1_500);
    const second = Date.now();
    expect(await consensus.read(0)).toMatchObject({ ok: false, code: 'NOT_LEADER' });
    expect(Date.now() - second).toBeLessThan(100);
  });
});

describe('forwarding wire format', () => {
  it('round-trips requests and outcomes', () => {
    const data = new Uint8Array([1, 2, 3]);
    const request = decodeForwardRequest(encodeForwardRequest({ group: 5, timeoutMs: 100, data }));
    expect({ ...request, data: [...request.data] }).toEqual({ group: 5, timeoutMs: 100, data: [1, 2, 3] });
    const ok: ProposeOutcome<CommandResult> = { ok: true, index: 4, result: appendResult };
    expect(decodeForwardOutcome(encodeForwardOutcome(ok))).toEqual(ok);
    expect(decodeForwardOutcome(encodeForwardOutcome({ ok: false, code: 'DROPPED' }))).toEqual({
      ok: false,
      code: 'DROPPED',
      leader: null,
    });
    expect(() => decodeForwardRequest(new Uint8Array([0xc1]))).toThrow();
  });
});

describe('forwarding over gRPC', () => {
  const started: GrpcTransport[] = [];
  const clients: StreamForwarder[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const transport of started.splice(0)) await transport.stop();
  });

  const leader = async (secret: string, proposals: Uint8Array[]): Promise<GrpcTransport> => {
    const transport = createGrpcTransport({
      nodeId: 'leader',
      clusterSecret: secret,
      extraServices: [
        {
          definition: forwardService,
          implementation: createForwardService({
            checkSecret: createSecretCheck(secret),
            propose: () => (_group, data) => {
              proposals.push(data);
              return Promise.resolve({ ok: true, index: 1, result: appendResult });
            },
          }),
        },
      ],
    });
    await transport.start({ onMessages: () => undefined, onSnapshot: () => Promise.resolve(false) });
    started.push(transport);
    return transport;
  };

  it('carries the command to the leader and its result back', async () => {
    const proposals: Uint8Array[] = [];
    const transport = await leader('a-secret-of-enough-length', proposals);
    const client = new StreamForwarder({ clusterSecret: 'a-secret-of-enough-length' });
    clients.push(client);
    client.setPeers(new Map([['leader', `127.0.0.1:${transport.port()}`]]));
    const result = await client.propose('leader', 3, new Uint8Array([9, 9]), 1_000);
    expect(result).toEqual({ kind: 'outcome', outcome: { ok: true, index: 1, result: appendResult } });
    expect(proposals.map((bytes) => [...bytes])).toEqual([[9, 9]]);
  });

  it('is refused, unsent, with the wrong secret or no server', async () => {
    const proposals: Uint8Array[] = [];
    const transport = await leader('a-secret-of-enough-length', proposals);
    const client = new StreamForwarder({ clusterSecret: 'another-secret-entirely' });
    clients.push(client);
    client.setPeers(new Map([['leader', `127.0.0.1:${transport.port()}`]]));
    expect(await client.propose('leader', 3, new Uint8Array([1]), 1_000)).toMatchObject({ kind: 'unsent' });
    expect(proposals).toEqual([]);
    const port = transport.port();
    await transport.stop();
    started.length = 0;
    const orphan = new StreamForwarder({ clusterSecret: 'a-secret-of-enough-length' });
    clients.push(orphan);
    orphan.setPeers(new Map([['leader', `127.0.0.1:${port}`]]));
    expect(await orphan.propose('leader', 3, new Uint8Array([1]), 1_000)).toMatchObject({ kind: 'unsent' });
  });
});
