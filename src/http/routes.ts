// The route table: every HTTP route the gateway serves, declared once. The router registers these
// with uWS and the OpenAPI document is generated from them, so a route cannot exist undocumented.

import type { ErrorCode } from '../api/errors.js';
import type { buildResponseSchemas, querySchemas, RequestSchemas } from '../api/schemas.js';

export type HttpMethod = 'get' | 'put' | 'post' | 'patch' | 'delete';

export type ResponseSchemaName = keyof ReturnType<typeof buildResponseSchemas>;

/** A non-error body: a named response schema, Prometheus text, the OpenAPI document, or none (204). */
export type ResponseBody = ResponseSchemaName | 'prometheus' | 'openapi' | 'none';

export interface RouteSpec {
  readonly operationId: string;
  readonly method: HttpMethod;
  /** uWS pattern; ":id" is the URL-encoded context id. */
  readonly path: string;
  readonly summary: string;
  /** Needs a Bearer key when keys are configured. */
  readonly auth: boolean;
  readonly body?: Exclude<keyof RequestSchemas, 'MessageInput'>;
  readonly query?: keyof typeof querySchemas;
  /** Reads the Idempotency-Key header. */
  readonly idempotencyKey?: boolean;
  /** Answers other than the error shape; /health/ready's 503 is one of them. */
  readonly responses: Readonly<Partial<Record<200 | 201 | 204 | 503, ResponseBody>>>;
  /** Errors specific to the route; the router's generic ones (auth, body, id, 5xx) are implied. */
  readonly errors: readonly ErrorCode[];
}

/** Errors every /v1 service call can end with besides the route's own. */
export const serviceErrors: readonly ErrorCode[] = [
  'rate_limited',
  'raft_unavailable',
  'raft_timeout',
  'overloaded',
  'shutting_down',
];

export const routes = [
  {
    operationId: 'putContext',
    method: 'put',
    path: '/v1/contexts/:id',
    summary: 'Create (201) or update (200) a context; an update changes only the fields sent',
    auth: true,
    body: 'ContextPut',
    responses: { 200: 'ContextView', 201: 'ContextView' },
    errors: ['invalid_context_config', 'context_tombstoned'],
  },
  {
    operationId: 'getContext',
    method: 'get',
    path: '/v1/contexts/:id',
    summary: 'Read a context',
    auth: true,
    responses: { 200: 'ContextView' },
    errors: ['context_not_found'],
  },
  {
    operationId: 'deleteContext',
    method: 'delete',
    path: '/v1/contexts/:id',
    summary: 'Tombstone a context: appends are refused, reads keep working',
    auth: true,
    responses: { 204: 'none' },
    errors: ['context_not_found'],
  },
  {
    operationId: 'patchMetadata',
    method: 'patch',
    path: '/v1/contexts/:id/metadata',
    summary: 'Shallow-merge metadata; a key set to null is removed; version unchanged',
    auth: true,
    body: 'MetadataPatch',
    responses: { 200: 'ContextView' },
    errors: ['invalid_metadata', 'context_not_found', 'context_tombstoned'],
  },
  {
    operationId: 'appendMessage',
    method: 'post',
    path: '/v1/contexts/:id/messages',
    summary: 'Append a message (201); a repeated Idempotency-Key or message.id replays the original (200)',
    auth: true,
    body: 'Append',
    idempotencyKey: true,
    responses: { 200: 'AppendResult', 201: 'AppendResult' },
    errors: ['invalid_message', 'context_not_found', 'conflict', 'context_tombstoned'],
  },
  {
    operationId: 'tailMessages',
    method: 'get',
    path: '/v1/contexts/:id/tail',
    summary:
      'Skip `offset` newest messages and return the next `limit`, oldest first; [] for unknown ids. Messages trimmed from the hot tail after archiving are read from the archive (503 archive_unavailable when it does not answer)',
    auth: true,
    query: 'Tail',
    responses: { 200: 'TailPage' },
    errors: ['invalid_query', 'archive_unavailable'],
  },
  {
    operationId: 'exportMessages',
    method: 'get',
    path: '/v1/contexts/:id/messages',
    summary:
      'Full-history export, ascending, seq > from_seq, with next_from_seq when more remain. Messages trimmed from the hot tail after archiving are read from the archive, one continuous history (503 archive_unavailable when it does not answer)',
    auth: true,
    query: 'Messages',
    responses: { 200: 'MessagesPage' },
    errors: ['invalid_query', 'context_not_found', 'archive_unavailable'],
  },
  {
    operationId: 'getLlmContext',
    method: 'get',
    path: '/v1/contexts/:id/context',
    summary: 'The LLM window: the newest messages that fit the budget, and whether to compact',
    auth: true,
    query: 'LlmContext',
    responses: { 200: 'LlmContext' },
    errors: ['invalid_query', 'context_not_found', 'conflict'],
  },
  {
    operationId: 'compactContext',
    method: 'post',
    path: '/v1/contexts/:id/compact',
    summary: 'Replace the whole LLM window atomically; the message log is untouched',
    auth: true,
    body: 'Compact',
    responses: { 200: 'CompactResult' },
    errors: ['invalid_replacement', 'context_not_found', 'conflict', 'context_tombstoned'],
  },
  {
    operationId: 'healthLive',
    method: 'get',
    path: '/health/live',
    summary: 'Liveness: the process answers',
    auth: false,
    responses: { 200: 'HealthOk' },
    errors: [],
  },
  {
    operationId: 'healthReady',
    method: 'get',
    path: '/health/ready',
    summary:
      'Readiness: joined the cluster, every hosted group has a leader and token counting is loaded (503 "starting" before)',
    auth: false,
    responses: { 200: 'HealthOk', 503: 'HealthStarting' },
    errors: [],
  },
  {
    operationId: 'metrics',
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    auth: false,
    responses: { 200: 'prometheus' },
    errors: [],
  },
  {
    operationId: 'openApi',
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    auth: false,
    responses: { 200: 'openapi' },
    errors: [],
  },
] as const satisfies readonly RouteSpec[];

export type OperationId = (typeof routes)[number]['operationId'];
