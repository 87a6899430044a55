// An in-memory ContextService for gateway tests. It follows the contract closely enough to
// exercise routing and error mapping, records every call, and throws a plain Error (so the gateway
// answers 500, which the tests treat as a failure) whenever the gateway hands it a value that
// validation should have refused or cleaned: unknown fields, malformed ids, out-of-range numbers.

import type {
  AppendRequest,
  AppendResult,
  CompactRequest,
  ContextPut,
  ContextView,
  JsonObject,
  LlmContextView,
  MessageInput,
  MessagesPage,
  Policy,
  StoredMessage,
} from '../../src/api/domain.js';
import { ServiceError } from '../../src/api/errors.js';
import type { ContextService, PutContextResult } from '../../src/api/service.js';

interface FakeContext {
  view: ContextView;
  messages: StoredMessage[];
  window: StoredMessage[];
  appendedKeys: Map<string, AppendResult>;
}

const timestamp = '2026-01-01T00:00:00.000Z';
const defaultPolicy: Policy = { strategy: 'last_n', config: { limit: 200 } };

export class FakeContextService implements ContextService {
  /** Every call, in order: method name and context id. */
  readonly calls: { method: string; id: string }[] = [];
  /** Successful state changes. */
  writes = 0;
  /** When set, the next call throws it (then it is cleared). */
  failNext: unknown = undefined;
  private readonly contexts = new Map<string, FakeContext>();

  async putContext(id: string, body: ContextPut): Promise<PutContextResult> {
    this.enter('putContext', id);
    assertKeys(body, ['token_budget', 'trigger_ratio', 'policy', 'metadata'], 'ContextPut');
    assertContextPut(body);
    const existing = this.contexts.get(id);
    if (existing === undefined) return { created: true, context: this.create(id, body) };
    if (existing.view.status === 'tombstoned') throw tombstoned(id);
    existing.view = { ...existing.view, ...body, updated_at: timestamp };
    this.writes += 1;
    return { created: false, context: existing.view };
  }

  async getContext(id: string): Promise<ContextView> {
    this.enter('getContext', id);
    return this.found(id).view;
  }

  async deleteContext(id: string): Promise<void> {
    this.enter('deleteContext', id);
    const context = this.found(id);
    context.view = { ...context.view, status: 'tombstoned' };
    this.writes += 1;
  }

  async patchMetadata(id: string, metadata: JsonObject): Promise<ContextView> {
    this.enter('patchMetadata', id);
    assertPlainObject(metadata, 'metadata');
    const context = this.found(id);
    if (context.view.status === 'tombstoned') throw tombstoned(id);
    const merged: JsonObject = { ...context.view.metadata };
    for (const [key, value] of Object.entries(metadata)) {
      if (value === null) delete merged[key];
      else merged[key] = value;
    }
    context.view = { ...context.view, metadata: merged };
    this.writes += 1;
    return context.view;
  }

  async append(id: string, request: AppendRequest): Promise<AppendResult> {
    this.enter('append', id);
    assertKeys(request, ['message', 'if_version', 'idempotency_key'], 'AppendRequest');
    assertMessage(request.message);
    const context = this.writable(id, request.if_version);
    const key = request.idempotency_key;
    const earlier = key === undefined ? undefined : context.appendedKeys.get(key);
    if (earlier !== undefined) return { ...earlier, replayed: true };
    const seq = context.view.last_seq + 1;
    const stored = toStored(id, seq, request.message);
    context.messages.push(stored);
    context.window.push(stored);
    context.view = { ...context.view, last_seq: seq, version: context.view.version + 1 };
    const result = {
      seq,
      version: context.view.version,
      token_estimate: stored.token_count,
      replayed: false,
    };
    if (key !== undefined) context.appendedKeys.set(key, result);
    this.writes += 1;
    return result;
  }

  async tail(id: string, limit: number, offset: number): Promise<readonly StoredMessage[]> {
    this.enter('tail', id);
    assertInteger(limit, 1, 1000, 'limit');
    assertInteger(offset, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const messages = this.contexts.get(id)?.messages ?? [];
    const end = Math.max(0, messages.length - offset);
    return messages.slice(Math.max(0, end - limit), end);
  }

  async messages(id: string, fromSeq: number, limit: number): Promise<MessagesPage> {
    this.enter('messages', id);
    assertInteger(fromSeq, 0, Number.MAX_SAFE_INTEGER, 'from_seq');
    assertInteger(limit, 1, 1000, 'limit');
    const after = this.found(id).messages.filter((message) => message.seq > fromSeq);
    const page = after.slice(0, limit);
    const last = page.at(-1);
    return after.length > limit && last !== undefined
      ? { messages: page, next_from_seq: last.seq }
      : { messages: page };
  }

  async llmContext(
    id: string,
    options: { budgetTokens?: number; ifVersion?: number },
  ): Promise<LlmContextView> {
    this.enter('llmContext', id);
    assertKeys(options, ['budgetTokens', 'ifVersion'], 'llmContext options');
    const context = this.found(id);
    checkVersion(context, options.ifVersion);
    const used = context.window.reduce((sum, message) => sum + message.token_count, 0);
    const budget = options.budgetTokens ?? context.view.token_budget;
    const first = context.window[0];
    const last = context.window.at(-1);
    return {
      version: context.view.version,
      messages: context.window,
      used_tokens: used,
      token_count: used,
      needs_compaction: used > budget * context.view.trigger_ratio,
      segments:
        first === undefined || last === undefined
          ? []
          : [{ type: 'live', from_seq: first.seq, to_seq: last.seq }],
      metadata: {},
    };
  }

  async compact(id: string, request: CompactRequest): Promise<{ readonly version: number }> {
    this.enter('compact', id);
    assertKeys(request, ['replacement', 'if_version'], 'CompactRequest');
    request.replacement.forEach(assertMessage);
    const context = this.writable(id, request.if_version);
    context.window = request.replacement.map((message, index) => toStored(id, index + 1, message));
    context.view = { ...context.view, version: context.view.version + 1 };
    this.writes += 1;
    return { version: context.view.version };
  }

  private enter(method: string, id: string): void {
    this.calls.push({ method, id });
    assertContextId(id);
    const failure = this.failNext;
    if (failure !== undefined) {
      this.failNext = undefined;
      // Tests also throw non-Error values to prove the server never leaks them.
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      throw failure;
    }
  }

  private create(id: string, body: ContextPut): ContextView {
    if (body.token_budget === undefined) {
      throw new ServiceError('invalid_context_config', 'token_budget is required when creating a context');
    }
    const view: ContextView = {
      id,
      status: 'active',
      token_budget: body.token_budget,
      trigger_ratio: body.trigger_ratio ?? 0.7,
      policy: body.policy ?? defaultPolicy,
      metadata: body.metadata ?? {},
      version: 0,
      last_seq: 0,
      archived_seq: 0,
      created_at: timestamp,
      inserted_at: timestamp,
      updated_at: timestamp,
    };
    this.contexts.set(id, { view, messages: [], window: [], appendedKeys: new Map() });
    this.writes += 1;
    return view;
  }

  private found(id: string): FakeContext {
    const context = this.contexts.get(id);
    if (context === undefined) throw new ServiceError('context_not_found', `Context ${id} not found`);
    return context;
  }

  private writable(id: string, ifVersion: number | undefined): FakeContext {
    const context = this.found(id);
    if (context.view.status === 'tombstoned') throw tombstoned(id);
    checkVersion(context, ifVersion);
    return context;
  }
}

const tombstoned = (id: string): ServiceError =>
  new ServiceError('context_tombstoned', `Context ${id} is tombstoned`);

const checkVersion = (context: FakeContext, ifVersion: number | undefined): void => {
  if (ifVersion !== undefined && ifVersion !== context.view.version) {
    throw new ServiceError(
      'conflict',
      `Context version changed (expected ${ifVersion}, found ${context.view.version})`,
    );
  }
};

const toStored = (contextId: string, seq: number, message: MessageInput): StoredMessage => ({
  id: message.id ?? `${contextId}:${seq}`,
  seq,
  role: message.role,
  parts: message.parts,
  metadata: message.metadata ?? {},
  token_count: message.token_count ?? message.parts.length,
  inserted_at: timestamp,
});

// The checks below throw plain Errors: they catch gateway bugs, not client mistakes.

const fail = (what: string): never => {
  throw new Error(`gateway passed an invalid value: ${what}`);
};

const assertKeys = (value: object, allowed: readonly string[], what: string): void => {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) fail(`${what} has unknown field ${key}`);
};

const assertPlainObject = (value: unknown, what: string): void => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} is not an object`);
};

const assertInteger = (value: unknown, min: number, max: number, what: string): void => {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    fail(`${what} out of range`);
};

const assertContextId = (id: string): void => {
  const bytes = Buffer.byteLength(id);
  if (bytes < 1 || bytes > 256) fail('context id length');
  for (const char of id) {
    const code = char.charCodeAt(0);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || char === '/') fail('context id character');
  }
};

const assertContextPut = (body: ContextPut): void => {
  if (body.token_budget !== undefined)
    assertInteger(body.token_budget, 1, Number.MAX_SAFE_INTEGER, 'token_budget');
  if (body.trigger_ratio !== undefined && !(body.trigger_ratio > 0 && body.trigger_ratio <= 1))
    fail('trigger_ratio');
  if (body.metadata !== undefined) assertPlainObject(body.metadata, 'metadata');
  if (body.policy === undefined) return;
  assertKeys(body.policy, ['strategy', 'config'], 'policy');
  const allowed = { last_n: ['limit'], skip_parts: ['skip_kinds', 'limit'], manual: [] }[
    body.policy.strategy
  ];
  if (allowed === undefined) fail('policy strategy');
  assertKeys(body.policy.config, allowed, 'policy.config');
};

const assertMessage = (message: MessageInput): void => {
  assertKeys(message, ['role', 'parts', 'metadata', 'token_count', 'id'], 'message');
  if (typeof message.role !== 'string' || message.role === '') fail('message.role');
  if (!Array.isArray(message.parts) || message.parts.length === 0) fail('message.parts');
  for (const part of message.parts) {
    assertPlainObject(part, 'part');
    if (typeof part.type !== 'string') fail('part.type');
  }
  if (message.metadata !== undefined) assertPlainObject(message.metadata, 'message.metadata');
  if (message.token_count !== undefined) {
    assertInteger(message.token_count, 0, Number.MAX_SAFE_INTEGER, 'token_count');
  }
};
