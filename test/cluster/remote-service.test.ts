// The remote-service decorator and the serving side, without processes: a fake caller carries each
// request through the real codec and the real server handler to another "node"'s service.

import { describe, expect, it } from 'vitest';

import type { RemoteCaller, ServiceCallResult } from '../../src/cluster/remote/remote-call-client.js';
import {
  decodeServiceAnswer,
  decodeServiceCall,
  encodeServiceAnswer,
  encodeServiceCall,
} from '../../src/cluster/remote/remote-call-protocol.js';
import type { ServiceCallRequest } from '../../src/cluster/remote/remote-call-protocol.js';
import { runServiceCall } from '../../src/cluster/remote/remote-call-server.js';
import { createRemoteService } from '../../src/cluster/remote/remote-service.js';
import type { ContextView } from '../../src/api/domain.js';
import { ServiceError } from '../../src/api/errors.js';
import type { ContextService } from '../../src/api/service.js';

const GROUPS = 8;

const view = (id: string, owner: string): ContextView =>
  ({ id, status: 'active', metadata: { owner } }) as unknown as ContextView;

/** A service that only answers getContext (naming the node) and throws for "missing" ids. */
const fakeService = (owner: string, calls: string[]): ContextService => {
  const unused = (): never => {
    throw new Error('not used here');
  };
  return {
    getContext: (id) => {
      calls.push(`${owner}:getContext:${id}`);
      if (id.startsWith('missing'))
        return Promise.reject(
          new ServiceError('context_not_found', `Context ${JSON.stringify(id)} does not exist`),
        );
      if (id.startsWith('broken')) return Promise.reject(new Error('disk on fire'));
      return Promise.resolve(view(id, owner));
    },
    putContext: (id) => {
      calls.push(`${owner}:putContext:${id}`);
      return Promise.resolve({ created: true, context: view(id, owner) });
    },
    append: () => {
      calls.push(`${owner}:append`);
      return Promise.resolve({ seq: 1, version: 1, token_estimate: 1, replayed: false });
    },
    deleteContext: unused,
    patchMetadata: unused,
    tail: unused,
    messages: unused,
    llmContext: unused,
    compact: unused,
  };
};

interface PeerSpec {
  readonly serves: boolean;
  /** Fail the transport this way instead of answering. */
  readonly fail?: 'unsent' | 'ambiguous';
}

/** Carries a request through the codec and the server handler of the named peer. */
const fakeCaller = (peers: Record<string, PeerSpec>, calls: string[]): RemoteCaller => ({
  call: async (peer: string, request: ServiceCallRequest): Promise<ServiceCallResult> => {
    const spec = peers[peer];
    calls.push(`call ${peer}`);
    if (spec === undefined) return { kind: 'unsent', reason: `no address for ${peer}` };
    if (spec.fail !== undefined) return { kind: spec.fail, reason: 'UNAVAILABLE: test' };
    const answer = await runServiceCall(
      {
        service: fakeService(peer, calls),
        serves: () => spec.serves,
        groupCount: GROUPS,
        onInternal: (error) => calls.push(`internal ${(error as Error).message}`),
      },
      decodeServiceCall(encodeServiceCall(request)),
    );
    return { kind: 'answer', answer: decodeServiceAnswer(encodeServiceAnswer(answer)) };
  },
});

const setup = (
  peers: Record<string, PeerSpec>,
  servesHere: boolean,
): { service: ContextService; calls: string[] } => {
  const calls: string[] = [];
  const service = createRemoteService({
    nodeId: 'me',
    local: fakeService('me', calls),
    caller: fakeCaller(peers, calls),
    groupCount: GROUPS,
    serves: () => servesHere,
    replicasOf: () => ['me', ...Object.keys(peers)],
    timeoutMs: 200,
    retryDelayMs: 5,
  });
  return { service, calls };
};

describe('remote service', () => {
  it('runs locally when this node serves the group', async () => {
    const { service, calls } = setup({ a: { serves: true } }, true);
    expect((await service.getContext('c1')).metadata).toEqual({ owner: 'me' });
    expect(calls).toEqual(['me:getContext:c1']);
  });

  it('asks a hosting node otherwise, and returns its answer', async () => {
    const { service, calls } = setup({ a: { serves: true } }, false);
    expect((await service.getContext('c1')).metadata).toEqual({ owner: 'a' });
    expect(calls).toEqual(['call a', 'a:getContext:c1']);
  });

  it("re-throws the hosting node's ServiceError unchanged", async () => {
    const { service } = setup({ a: { serves: true } }, false);
    const error = await service.getContext('missing-1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({ code: 'context_not_found', message: 'Context "missing-1" does not exist' });
  });

  it("turns a peer's internal failure into a plain error (a 500 here), not its message", async () => {
    const { service, calls } = setup({ a: { serves: true } }, false);
    const error = await service.getContext('broken-1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ServiceError);
    expect(calls).toContain('internal disk on fire');
  });

  it('skips replicas that answer "not here" or cannot be reached, for a read', async () => {
    const { service, calls } = setup(
      { a: { serves: false }, b: { serves: true, fail: 'ambiguous' }, c: { serves: true } },
      false,
    );
    expect((await service.getContext('c1')).metadata).toEqual({ owner: 'c' });
    expect(calls).toEqual(['call a', 'call b', 'call c', 'c:getContext:c1']);
  });

  it('does not retry a PUT whose call may have run: raft_timeout', async () => {
    const { service, calls } = setup({ a: { serves: true, fail: 'ambiguous' }, b: { serves: true } }, false);
    const error = await service.putContext('c1', { token_budget: 10 }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'raft_timeout' });
    expect(calls).toEqual(['call a']);
  });

  it('answers raft_unavailable when no replica serves the group within the budget', async () => {
    const { service } = setup({ a: { serves: false } }, false);
    const error = await service.getContext('c1').catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'raft_unavailable' });
  });

  it('rejects an invalid id locally, before any call', async () => {
    const { service, calls } = setup({ a: { serves: true } }, false);
    const error = await service.getContext('a/b').catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'invalid_context_id' });
    expect(calls).toEqual([]);
  });

  it('keeps writes that only propose on the local path', async () => {
    const { service, calls } = setup({ a: { serves: true } }, false);
    await service.append('c1', { message: { role: 'user', parts: [] } });
    expect(calls).toEqual(['me:append']);
  });

  it('refuses unknown operations in the codec', () => {
    const bytes = Buffer.from(JSON.stringify({ operation: 'deleteContext', args: ['x'] }));
    expect(() => decodeServiceCall(bytes)).toThrow(/operation/);
  });
});
