// Contract (../shared/API.md, "Contexts") over real HTTP against a real node: PUT create/update,
// GET, DELETE (tombstones) and PATCH metadata, with exact status codes and bodies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ContextView } from '../../src/api/domain.js';
import {
  ContractClient,
  ISO_UTC,
  countedMessage,
  expectError,
  expectStatus,
  settledMetricSum,
  textMessage,
  uniqueId,
} from './contract-helpers.js';
import { startTestNode, type TestNode } from './node-harness.js';

/** Raft log entries made durable on this node: a write through Raft moves it, a read does not. */
const persistedEntries = 'fastpaca_raft_entries_persisted_total';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('contract: contexts', () => {
  let node: TestNode;
  let api: ContractClient;
  beforeAll(async () => {
    node = await startTestNode();
    api = new ContractClient(node.base);
  }, 30_000);
  afterAll(async () => {
    expect(node.fatalErrors).toEqual([]);
    await node.destroy();
  });

  describe('PUT create', () => {
    it('creates with defaults: 201 and the full context object', async () => {
      const id = uniqueId('create');
      const response = await api.putContext(id, { token_budget: 1000 });
      const body = expectStatus<ContextView>(response, 201);
      expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
      expect(body).toEqual({
        id,
        status: 'active',
        token_budget: 1000,
        trigger_ratio: 0.7,
        policy: { strategy: 'last_n', config: { limit: 200 } },
        metadata: {},
        version: 0,
        last_seq: 0,
        archived_seq: 0,
        created_at: expect.stringMatching(ISO_UTC) as unknown,
        inserted_at: body.created_at,
        updated_at: body.created_at,
      });
    });

    it('creates with every field given', async () => {
      const id = uniqueId('create-all');
      const body = await api.create(id, {
        token_budget: 5000,
        trigger_ratio: 0.25,
        policy: { strategy: 'skip_parts', config: { skip_kinds: ['tool'], limit: 10 } },
        metadata: { user: 'u1', tags: ['a', 'b'], nested: { x: 1 } },
      });
      expect(body).toMatchObject({
        id,
        status: 'active',
        token_budget: 5000,
        trigger_ratio: 0.25,
        policy: { strategy: 'skip_parts', config: { skip_kinds: ['tool'], limit: 10 } },
        metadata: { user: 'u1', tags: ['a', 'b'], nested: { x: 1 } },
        version: 0,
        last_seq: 0,
      });
    });

    it('accepts trigger_ratio 1 (the closed end of (0, 1]) and the manual policy', async () => {
      const id = uniqueId('create-edge');
      const body = await api.create(id, {
        token_budget: 1,
        trigger_ratio: 1,
        policy: { strategy: 'manual' },
      });
      expect(body).toMatchObject({ token_budget: 1, trigger_ratio: 1, policy: { strategy: 'manual' } });
    });

    it('ignores unknown request fields', async () => {
      const id = uniqueId('create-unknown');
      const body = await api.create(id, { token_budget: 10, surprise: true, metadata: { a: 1 } });
      expect(body).not.toHaveProperty('surprise');
      expect(body.metadata).toEqual({ a: 1 });
    });

    it('refuses a create without token_budget: 400 invalid_context_config naming it, nothing created', async () => {
      const id = uniqueId('create-nobudget');
      expectError(
        await api.putContext(id, { trigger_ratio: 0.5 }),
        400,
        'invalid_context_config',
        /token_budget/,
      );
      expectError(await api.getContext(id), 404, 'context_not_found');
    });

    const invalidBodies: readonly (readonly [string, Record<string, unknown>, RegExp])[] = [
      ['token_budget 0', { token_budget: 0 }, /token_budget/],
      ['token_budget negative', { token_budget: -5 }, /token_budget/],
      ['token_budget fractional', { token_budget: 1.5 }, /token_budget/],
      ['token_budget string', { token_budget: '100' }, /token_budget/],
      ['token_budget null', { token_budget: null }, /token_budget/],
      ['trigger_ratio 0', { token_budget: 10, trigger_ratio: 0 }, /trigger_ratio/],
      ['trigger_ratio > 1', { token_budget: 10, trigger_ratio: 1.01 }, /trigger_ratio/],
      ['trigger_ratio negative', { token_budget: 10, trigger_ratio: -0.5 }, /trigger_ratio/],
      ['trigger_ratio string', { token_budget: 10, trigger_ratio: '0.5' }, /trigger_ratio/],
      ['policy not an object', { token_budget: 10, policy: 'last_n' }, /policy/],
      ['policy unknown strategy', { token_budget: 10, policy: { strategy: 'lru', config: {} } }, /policy/],
      [
        'policy last_n limit 0',
        { token_budget: 10, policy: { strategy: 'last_n', config: { limit: 0 } } },
        /policy\.config\.limit/,
      ],
      [
        'policy skip_parts empty kind',
        { token_budget: 10, policy: { strategy: 'skip_parts', config: { skip_kinds: [''] } } },
        /policy\.config\.skip_kinds/,
      ],
      ['metadata a list', { token_budget: 10, metadata: ['a'] }, /metadata/],
      ['metadata a string', { token_budget: 10, metadata: 'x' }, /metadata/],
    ];

    it.each(invalidBodies)('refuses %s on create: 400 invalid_context_config', async (_name, body, field) => {
      const id = uniqueId('create-invalid');
      expectError(await api.putContext(id, body), 400, 'invalid_context_config', field);
      expectError(await api.getContext(id), 404, 'context_not_found');
    });

    it('refuses a body that is not an object: 400 invalid_context_config', async () => {
      const id = uniqueId('create-array');
      expectError(await api.putContext(id, [1, 2]), 400, 'invalid_context_config');
    });
  });

  describe('PUT update', () => {
    it('answers 200 and changes only the fields sent; version, messages and window are untouched', async () => {
      const id = uniqueId('update');
      await api.create(id, {
        token_budget: 1000,
        policy: { strategy: 'last_n', config: { limit: 50 } },
        metadata: { a: 1 },
      });
      await api.appendOk(id, countedMessage(7));
      const before = await api.contextOk(id);
      const tailBefore = await api.tailOk(id);
      const windowBefore = await api.windowOk(id);
      await sleep(5); // so a changed updated_at is observable at millisecond resolution

      const response = await api.putContext(id, { trigger_ratio: 0.5 });
      const updated = expectStatus<ContextView>(response, 200);
      expect(updated).toEqual({ ...before, trigger_ratio: 0.5, updated_at: updated.updated_at });
      expect(updated.updated_at).toMatch(ISO_UTC);
      expect(updated.updated_at > before.updated_at).toBe(true);
      expect(updated.created_at).toBe(before.created_at);
      expect(updated.version).toBe(1);
      expect(updated.last_seq).toBe(1);
      expect(await api.contextOk(id)).toEqual(updated);
      expect(await api.tailOk(id)).toEqual(tailBefore);
      expect(await api.windowOk(id)).toEqual(windowBefore);

      const again = expectStatus<ContextView>(
        await api.putContext(id, { metadata: { b: 2 }, policy: { strategy: 'manual' } }),
        200,
      );
      expect(again).toMatchObject({
        token_budget: 1000,
        trigger_ratio: 0.5,
        policy: { strategy: 'manual' },
        metadata: { b: 2 }, // PUT replaces metadata; PATCH merges
        version: 1,
        last_seq: 1,
      });
    });

    it('a PUT that changes nothing writes nothing: 200, updated_at and version unchanged, no Raft entry', async () => {
      const id = uniqueId('noop');
      const body = {
        token_budget: 800,
        trigger_ratio: 0.6,
        policy: { strategy: 'skip_parts', config: { skip_kinds: ['tool'] } },
        metadata: { user: 'u', n: [1, 2] },
      };
      const created = await api.create(id, body);
      await api.appendOk(id, textMessage('hello'));
      const before = await api.contextOk(id);
      await sleep(5);
      const entriesBefore = await settledMetricSum(node.base, persistedEntries);

      for (const same of [body, {}, { token_budget: 800 }, { metadata: { n: [1, 2], user: 'u' } }]) {
        const response = await api.putContext(id, same);
        expect(expectStatus<ContextView>(response, 200)).toEqual(before);
      }
      const after = await api.contextOk(id);
      expect(after).toEqual(before);
      expect(after.updated_at).toBe(created.updated_at);
      expect(after.version).toBe(1);
      expect(await settledMetricSum(node.base, persistedEntries)).toBe(entriesBefore);

      // The control: a PUT that changes something does go through the log.
      await api.putContext(id, { token_budget: 801 });
      expect(await settledMetricSum(node.base, persistedEntries)).toBeGreaterThan(entriesBefore);
    });

    it('refuses invalid values on update, naming the field, and changes nothing', async () => {
      const id = uniqueId('update-invalid');
      await api.create(id, { token_budget: 100 });
      const before = await api.contextOk(id);
      expectError(
        await api.putContext(id, { token_budget: 0 }),
        400,
        'invalid_context_config',
        /token_budget/,
      );
      expectError(
        await api.putContext(id, { token_budget: 200, trigger_ratio: 2 }),
        400,
        'invalid_context_config',
        /trigger_ratio/,
      );
      expectError(
        await api.putContext(id, { policy: { strategy: 'nope' } }),
        400,
        'invalid_context_config',
        /policy/,
      );
      expect(await api.contextOk(id)).toEqual(before);
    });
  });

  describe('GET', () => {
    it('answers 200 with the same object PUT answered', async () => {
      const id = uniqueId('get');
      const created = await api.create(id, { token_budget: 42, metadata: { k: 'v' } });
      const response = await api.getContext(id);
      expect(expectStatus<ContextView>(response, 200)).toEqual(created);
    });

    it('answers 404 context_not_found for an unknown id', async () => {
      expectError(await api.getContext(uniqueId('missing')), 404, 'context_not_found');
    });
  });

  describe('DELETE', () => {
    it('tombstones: 204, appends and updates get 409 context_tombstoned, reads keep working', async () => {
      const id = uniqueId('delete');
      await api.create(id, { token_budget: 1000, metadata: { keep: true } });
      const appended = await api.appendOk(id, textMessage('before the end'));
      const tailBefore = await api.tailOk(id);
      const windowBefore = await api.windowOk(id);

      const deleted = await api.deleteContext(id);
      expect(deleted.status).toBe(204);
      expect(deleted.body).toBeUndefined();

      const context = await api.contextOk(id);
      expect(context).toMatchObject({
        id,
        status: 'tombstoned',
        version: appended.version,
        last_seq: 1,
        metadata: { keep: true },
      });

      expectError(await api.append(id, textMessage('too late')), 409, 'context_tombstoned');
      expectError(await api.putContext(id, { token_budget: 2000 }), 409, 'context_tombstoned');
      expectError(await api.putContext(id, { token_budget: 1000 }), 409, 'context_tombstoned');
      expectError(await api.patchMetadata(id, { metadata: { x: 1 } }), 409, 'context_tombstoned');
      expectError(
        await api.compact(id, { replacement: [textMessage('summary')] }),
        409,
        'context_tombstoned',
      );

      expect(await api.tailOk(id)).toEqual(tailBefore);
      expect((await api.exportOk(id)).messages).toEqual(tailBefore);
      expect(await api.windowOk(id)).toEqual(windowBefore);
      const after = await api.contextOk(id);
      expect(after).toMatchObject({ status: 'tombstoned', token_budget: 1000, last_seq: 1 });
    });

    it('answers 404 context_not_found for an unknown id', async () => {
      expectError(await api.deleteContext(uniqueId('delete-missing')), 404, 'context_not_found');
    });

    it('is idempotent: deleting a tombstoned context again answers 204', async () => {
      const id = uniqueId('delete-twice');
      await api.create(id);
      expect((await api.deleteContext(id)).status).toBe(204);
      expect((await api.deleteContext(id)).status).toBe(204);
      expect((await api.contextOk(id)).status).toBe('tombstoned');
    });
  });

  describe('PATCH metadata', () => {
    it('shallow-merges, null removes a key, version unchanged: 200 with the context', async () => {
      const id = uniqueId('patch');
      await api.create(id, {
        token_budget: 1000,
        metadata: { a: 1, nested: { x: 1, y: 2 }, gone: 'soon', keep: [1] },
      });
      await api.appendOk(id, textMessage('one'));
      await api.appendOk(id, textMessage('two'));
      const before = await api.contextOk(id);

      const response = await api.patchMetadata(id, {
        metadata: { a: 2, nested: { z: 3 }, gone: null, added: true, absent: null },
      });
      const patched = expectStatus<ContextView>(response, 200);
      expect(patched.metadata).toEqual({ a: 2, nested: { z: 3 }, keep: [1], added: true });
      expect(patched).toEqual({ ...before, metadata: patched.metadata, updated_at: patched.updated_at });
      expect(patched.version).toBe(2);
      expect(await api.contextOk(id)).toEqual(patched);

      const empty = expectStatus<ContextView>(await api.patchMetadata(id, { metadata: {} }), 200);
      expect(empty).toEqual(patched);
    });

    it('answers 404 context_not_found for an unknown id', async () => {
      expectError(
        await api.patchMetadata(uniqueId('patch-missing'), { metadata: { a: 1 } }),
        404,
        'context_not_found',
      );
    });

    it('refuses a body without a metadata object: 400 invalid_metadata', async () => {
      const id = uniqueId('patch-invalid');
      await api.create(id, { token_budget: 10, metadata: { a: 1 } });
      expectError(await api.patchMetadata(id, {}), 400, 'invalid_metadata', /metadata/);
      expectError(await api.patchMetadata(id, { metadata: 'x' }), 400, 'invalid_metadata', /metadata/);
      expectError(await api.patchMetadata(id, { metadata: [1] }), 400, 'invalid_metadata', /metadata/);
      expect((await api.contextOk(id)).metadata).toEqual({ a: 1 });
    });

    it('holds the merged metadata to the limit of one PATCH: 400 invalid_metadata, nothing changed', async () => {
      const id = uniqueId('patch-grow');
      await api.create(id, { token_budget: 10 });
      // 60 KiB each: every PATCH fits the 64 KiB limit, their merge does not.
      const blob = 'm'.repeat(60 * 1024);
      expectStatus<ContextView>(await api.patchMetadata(id, { metadata: { k0: blob } }), 200);
      const before = await api.contextOk(id);
      for (let call = 1; call <= 5; call++) {
        const refused = expectError(
          await api.patchMetadata(id, { metadata: { [`k${call}`]: blob } }),
          400,
          'invalid_metadata',
        );
        expect(refused.message).toMatch(/after the merge would exceed 65536 bytes/);
      }
      expect(await api.contextOk(id)).toEqual(before);
      // Replacing a key with a value of the same size, or removing one, still applies.
      const replaced = await api.patchMetadata(id, { metadata: { k0: 'n'.repeat(60 * 1024) } });
      expect(expectStatus<ContextView>(replaced, 200).metadata).toEqual({ k0: 'n'.repeat(60 * 1024) });
      const removed = expectStatus<ContextView>(await api.patchMetadata(id, { metadata: { k0: null } }), 200);
      expect(removed.metadata).toEqual({});
    });
  });
});
