// One handler per operation of the route table: validate what the router extracted, call the
// service, shape the reply. Handlers are async so every validation error surfaces as a rejection
// and is answered by the exchange, in one place.

import type { StoredMessage } from '../api/domain.js';
import type { ContextService, Readiness } from '../api/service.js';
import type { Header, Reply } from './reply.js';
import { jsonReply, noContentReply } from './reply.js';
import type { OperationId } from './routes.js';
import type { RequestValidators } from './validation.js';

/** What the router read synchronously from the request. */
export interface RouteInput {
  /** Decoded and checked; '' on routes without ":id". */
  readonly contextId: string;
  /** Raw query string, '' when absent or unused. */
  readonly rawQuery: string;
  /** Parsed JSON body; undefined on routes without one. */
  readonly body: unknown;
  /** Raw Idempotency-Key header, '' when absent or unused. */
  readonly idempotencyKey: string;
}

export type RouteHandler = (input: RouteInput) => Promise<Reply>;

export interface MetricsSnapshot {
  readonly contentType: string;
  readonly body: string;
}

export interface HandlerDependencies {
  readonly service: ContextService;
  readonly validators: RequestValidators;
  readonly readiness: () => Readiness;
  readonly metrics: () => Promise<MetricsSnapshot>;
  /** The OpenAPI document, serialized once at start-up. */
  readonly openApiJson: string;
}

const replayedHeaders: readonly Header[] = [['Idempotent-Replayed', 'true']];
const okReply = jsonReply(200, { status: 'ok' });
const notReadyRetryAfterSeconds = '1';

export const createHandlers = (deps: HandlerDependencies): Record<OperationId, RouteHandler> => {
  const { service, validators } = deps;
  return {
    putContext: async ({ contextId, body }) => {
      const result = await service.putContext(contextId, validators.contextPut(body));
      return jsonReply(result.created ? 201 : 200, result.context);
    },
    getContext: async ({ contextId }) => jsonReply(200, await service.getContext(contextId)),
    deleteContext: async ({ contextId }) => {
      await service.deleteContext(contextId);
      return noContentReply;
    },
    patchMetadata: async ({ contextId, body }) =>
      jsonReply(200, await service.patchMetadata(contextId, validators.metadataPatch(body))),
    appendMessage: async ({ contextId, body, idempotencyKey }) => {
      const result = await service.append(contextId, validators.append(body, idempotencyKey));
      const answer = { seq: result.seq, version: result.version, token_estimate: result.token_estimate };
      return result.replayed ? jsonReply(200, answer, replayedHeaders) : jsonReply(201, answer);
    },
    tailMessages: async ({ contextId, rawQuery }) => {
      const query = validators.tailQuery(rawQuery);
      const messages = await service.tail(contextId, query.limit, query.offset);
      return jsonReply(200, tailPage(messages, query.limit, query.offset));
    },
    exportMessages: async ({ contextId, rawQuery }) => {
      const query = validators.messagesQuery(rawQuery);
      return jsonReply(200, await service.messages(contextId, query.fromSeq, query.limit));
    },
    getLlmContext: async ({ contextId, rawQuery }) =>
      jsonReply(200, await service.llmContext(contextId, validators.llmContextQuery(rawQuery))),
    compactContext: async ({ contextId, body }) => {
      const result = await service.compact(contextId, validators.compact(body));
      return jsonReply(200, { version: result.version });
    },
    healthLive: async () => okReply,
    healthReady: async () => readyReply(deps.readiness()),
    metrics: async () => {
      const snapshot = await deps.metrics();
      return { status: 200, body: snapshot.body, contentType: snapshot.contentType };
    },
    openApi: async () => ({ status: 200, body: deps.openApiJson }),
  };
};

const readyReply = (readiness: Readiness): Reply =>
  readiness.ready
    ? okReply
    : jsonReply(503, { status: 'starting', reason: readiness.reason ?? 'not ready' }, [
        ['Retry-After', notReadyRetryAfterSeconds],
      ]);

/**
 * The tail's answer. The page ends at the newest message it asked for; when the read page budget
 * left out older ones it should have held, `next_offset` says where to continue.
 */
const tailPage = (
  messages: readonly StoredMessage[],
  limit: number,
  offset: number,
): { readonly messages: readonly StoredMessage[]; readonly next_offset?: number } => {
  const oldest = messages[0];
  const newest = messages[messages.length - 1];
  if (oldest === undefined || newest === undefined) return { messages };
  const oldestAsked = Math.max(1, newest.seq - limit + 1);
  return oldest.seq > oldestAsked ? { messages, next_offset: offset + messages.length } : { messages };
};
