// The OpenAPI 3.1 document served at GET /openapi.json, generated from the route table and the same
// TypeBox schemas the gateway validates with (OpenAPI 3.1 schemas are JSON Schema 2020-12, which
// TypeBox emits), so the reference cannot drift from the behaviour.

import type { TObject } from '@sinclair/typebox';

import type { ErrorCode } from '../api/errors.js';
import { ErrorCodes } from '../api/errors.js';
import type { RequestLimits } from '../api/schemas.js';
import { buildRequestSchemas, buildResponseSchemas, ContextIdSchema, querySchemas } from '../api/schemas.js';
import type { ResponseBody, RouteSpec } from './routes.js';
import { routes, serviceErrors } from './routes.js';
import { streamFrameSchema, streamPaths } from '../stream/stream-openapi.js';

type JsonDoc = Record<string, unknown>;

const ref = (name: string): JsonDoc => ({ $ref: `#/components/schemas/${name}` });

const headerDocs = {
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
  'WWW-Authenticate': { description: 'Always "Bearer"', schema: { type: 'string' } },
  'X-Request-Id': { description: 'Also in the message and in the server log', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: '"true" when an earlier append is replayed',
    schema: { type: 'string' },
  },
} satisfies Record<string, JsonDoc>;

export const buildOpenApiDocument = (limits: RequestLimits): JsonDoc => ({
  openapi: '3.1.0',
  info: {
    title: 'fastpaca',
    version: '1',
    description:
      'Raft-replicated context and event log for LLM apps. Errors are {"error": code, "message": sentence}. ' +
      `Request bodies are application/json, at most ${limits.bodyBytesMax} bytes; unknown fields are ignored.`,
  },
  components: {
    schemas: {
      ...buildRequestSchemas(limits),
      ...buildResponseSchemas(limits),
      StreamFrame: streamFrameSchema,
    },
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'One of the configured API keys' },
    },
  },
  security: [{ bearer: [] }],
  paths: { ...buildPaths(), ...streamPaths() },
});

const buildPaths = (): JsonDoc => {
  const paths: Record<string, JsonDoc> = {};
  for (const route of routes) {
    const path = route.path.replace(':id', '{id}');
    paths[path] = { ...paths[path], [route.method]: operation(route) };
  }
  paths['/v1/admin/snapshot'] = { get: snapshotOperation() };
  return paths;
};

/** Registered by src/snapshot/snapshot-route.ts (a streamed body, outside the JSON route table). */
const snapshotRoute: RouteSpec = {
  operationId: 'createSnapshot',
  method: 'get',
  path: '/v1/admin/snapshot',
  summary: 'Online snapshot',
  auth: true,
  responses: {},
  errors: [],
};

const snapshotOperation = (): JsonDoc => ({
  operationId: 'createSnapshot',
  summary:
    "A consistent point-in-time copy of this node's store, streamed (the fastpaca snapshot file format; " +
    'use `fastpaca snapshot create`)',
  security: [{ bearer: [] }],
  parameters: [],
  responses: {
    '200': {
      description: 'The snapshot file, chunked; it ends with a SHA-256 of everything before it',
      content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
    },
    ...errorResponses(snapshotRoute),
  },
});

const operation = (route: RouteSpec): JsonDoc => ({
  operationId: route.operationId,
  summary: route.summary,
  security: route.auth ? [{ bearer: [] }] : [],
  parameters: parameters(route),
  ...(route.body === undefined
    ? {}
    : { requestBody: { required: true, content: { 'application/json': { schema: ref(route.body) } } } }),
  responses: { ...successResponses(route), ...errorResponses(route) },
});

const parameters = (route: RouteSpec): JsonDoc[] => {
  const list: JsonDoc[] = [];
  if (route.path.includes(':id')) {
    list.push({
      name: 'id',
      in: 'path',
      required: true,
      description: 'URL-encoded',
      schema: ContextIdSchema,
    });
  }
  if (route.query !== undefined) list.push(...queryParameters(querySchemas[route.query]));
  if (route.idempotencyKey === true) {
    list.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description: 'Makes retries safe; defaults to message.id',
      schema: { type: 'string' },
    });
  }
  return list;
};

const queryParameters = (schema: TObject): JsonDoc[] =>
  Object.entries(schema.properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: false,
    schema: property,
  }));

const successResponses = (route: RouteSpec): JsonDoc => {
  const responses: JsonDoc = {};
  for (const [status, body] of Object.entries(route.responses)) {
    const headers =
      status === '503'
        ? retryHeaders
        : route.idempotencyKey === true && status === '200'
          ? replayHeaders
          : undefined;
    responses[status] = successResponse(status, body, headers);
  }
  return responses;
};

const replayHeaders = { 'Idempotent-Replayed': headerDocs['Idempotent-Replayed'] };
const retryHeaders = { 'Retry-After': headerDocs['Retry-After'] };

const successResponse = (status: string, body: ResponseBody, headers: JsonDoc | undefined): JsonDoc => {
  const description = status === '201' ? 'Created' : status === '204' ? 'No content' : `HTTP ${status}`;
  const withHeaders = headers === undefined ? {} : { headers };
  switch (body) {
    case 'none':
      return { description, ...withHeaders };
    case 'prometheus':
      return {
        description: 'Prometheus text exposition',
        content: { 'text/plain': { schema: { type: 'string' } } },
      };
    case 'openapi':
      return {
        description: 'OpenAPI 3.1 document',
        content: { 'application/json': { schema: { type: 'object' } } },
      };
    default:
      return { description, ...withHeaders, content: { 'application/json': { schema: ref(body) } } };
  }
};

/** Route-specific errors plus those the router adds to every route of its kind. */
const errorCodesOf = (route: RouteSpec): ErrorCode[] => {
  const codes = new Set<ErrorCode>(route.errors);
  if (route.path.includes(':id')) codes.add('invalid_context_id');
  if (route.auth) codes.add('unauthorized');
  if (route.body !== undefined) {
    for (const code of [
      'invalid_json',
      'request_timeout',
      'payload_too_large',
      'unsupported_media_type',
    ] as const)
      codes.add(code);
  }
  if (route.path.startsWith('/v1/')) for (const code of serviceErrors) codes.add(code);
  if (route.path.startsWith('/v1/') && route.method !== 'get') codes.add('insufficient_storage');
  codes.add('internal');
  return [...codes];
};

const errorResponses = (route: RouteSpec): JsonDoc => {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodesOf(route)) {
    const status = ErrorCodes[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: JsonDoc = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = errorResponse(status, codes);
  }
  return responses;
};

const errorResponse = (status: number, codes: readonly ErrorCode[]): JsonDoc => {
  const headers: JsonDoc = {};
  if (status === 401) headers['WWW-Authenticate'] = headerDocs['WWW-Authenticate'];
  if (status === 429 || status === 503) headers['Retry-After'] = headerDocs['Retry-After'];
  if (status === 500) headers['X-Request-Id'] = headerDocs['X-Request-Id'];
  return {
    description: `Error: ${codes.join(' | ')}`,
    ...(Object.keys(headers).length === 0 ? {} : { headers }),
    content: {
      'application/json': {
        schema: {
          allOf: [ref('Error')],
          properties: { error: { enum: codes } },
        },
      },
    },
  };
};
