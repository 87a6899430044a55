// Proves GET /openapi.json serves an OpenAPI 3.1 document of the right shape: every route of the
// table under its path and method, path parameters declared, every $ref resolving, every error code
// a route can answer documented; and that the documented schemas are valid JSON Schema that accept
// the gateway's real answers (so the document describes what the server actually sends).

import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { routes } from '../../src/http/routes.js';
import type { TestServer } from './harness.js';
import { call, startTestServer } from './harness.js';

interface Operation {
  operationId: string;
  parameters: { name: string; in: string; required: boolean }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
  security: unknown[];
}

interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object>; securitySchemes: Record<string, unknown> };
}

let server: TestServer;
let doc: Document;

beforeAll(async () => {
  server = await startTestServer({ apiKeys: ['k'] });
  const response = await call(server.base, 'GET', '/openapi.json');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('application/json');
  doc = response.body as Document;
});

afterAll(async () => {
  await server.close();
});

const collectRefs = (value: unknown, refs: string[] = []): string[] => {
  if (Array.isArray(value)) for (const item of value) collectRefs(item, refs);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string') refs.push(item);
      else collectRefs(item, refs);
    }
  }
  return refs;
};

describe('OpenAPI document', () => {
  it('has the 3.1 top level', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(typeof doc.info.title).toBe('string');
    expect(typeof doc.info.version).toBe('string');
    expect(doc.components.securitySchemes).toHaveProperty('bearer');
  });

  it('documents every route with its method, operation id, parameters and responses', () => {
    const expectedPaths = [
      '/v1/contexts/{id}',
      '/v1/contexts/{id}/metadata',
      '/v1/contexts/{id}/messages',
      '/v1/contexts/{id}/tail',
      '/v1/contexts/{id}/context',
      '/v1/contexts/{id}/compact',
      '/health/live',
      '/health/ready',
      '/metrics',
      '/openapi.json',
      // The live streams (src/stream/stream-openapi.ts): not in the route table, documented beside it.
      '/v1/contexts/{id}/stream',
      '/v1/contexts/{id}/events',
      '/v1/admin/snapshot',
    ];
    expect(Object.keys(doc.paths).sort()).toEqual([...expectedPaths].sort());
    expect(routes.length).toBe(13);
    const operationIds = new Set<string>();
    for (const route of routes) {
      const operation = doc.paths[route.path.replace(':id', '{id}')]?.[route.method];
      expect(operation, `${route.method} ${route.path}`).toBeDefined();
      if (operation === undefined) continue;
      operationIds.add(operation.operationId);
      expect(Object.keys(operation.responses).some((status) => status.startsWith('2'))).toBe(true);
      const pathParams = operation.parameters.filter((parameter) => parameter.in === 'path');
      expect(pathParams.map((parameter) => parameter.name)).toEqual(route.path.includes(':id') ? ['id'] : []);
      expect(pathParams.every((parameter) => parameter.required)).toBe(true);
      expect(operation.requestBody !== undefined).toBe('body' in route);
      expect(operation.security).toEqual(route.auth ? [{ bearer: [] }] : []);
    }
    expect(operationIds.size).toBe(routes.length);
  });

  it('documents the websocket stream and its SSE mirror: parameters, refusals, frames', () => {
    const stream = doc.paths['/v1/contexts/{id}/stream']?.get;
    const events = doc.paths['/v1/contexts/{id}/events']?.get;
    expect(stream?.parameters.map((parameter) => parameter.name)).toEqual([
      'id',
      'cursor',
      'include_messages',
    ]);
    expect(events?.parameters.map((parameter) => parameter.name)).toEqual([
      'id',
      'cursor',
      'include_messages',
      'Last-Event-ID',
    ]);
    expect(Object.keys(stream?.responses ?? {})).toEqual(['101', '400', '401', '404', '426', '503']);
    expect(Object.keys(events?.responses ?? {})).toEqual(['200', '400', '401', '404', '503']);
    expect(doc.components.schemas).toHaveProperty('StreamFrame');
  });

  it('lists query parameters and error codes per operation', () => {
    const tail = doc.paths['/v1/contexts/{id}/tail']?.get;
    expect(tail?.parameters.map((parameter) => parameter.name)).toEqual(['id', 'limit', 'offset']);
    const append = doc.paths['/v1/contexts/{id}/messages']?.post;
    expect(append?.parameters.map((parameter) => parameter.name)).toEqual(['id', 'Idempotency-Key']);
    const statuses = Object.keys(append?.responses ?? {});
    expect(statuses).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '404', '409', '413', '415', '429', '500', '503']),
    );
    expect(append?.responses['400']?.description).toContain('invalid_message');
    expect(append?.responses['400']?.description).toContain('invalid_json');
    expect(append?.responses['409']?.description).toContain('context_tombstoned');
  });

  it('resolves every $ref to a component schema that is valid JSON Schema', () => {
    const refs = collectRefs(doc.paths);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      const name = ref.replace('#/components/schemas/', '');
      expect(doc.components.schemas, ref).toHaveProperty(name);
    }
    const ajv = new Ajv({ strict: false });
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      expect(() => ajv.compile(schema), name).not.toThrow();
    }
  });

  it('describes the bodies the server really sends', async () => {
    const ajv = new Ajv({ strict: false });
    const matches = (name: string, value: unknown): boolean => {
      const schema = doc.components.schemas[name];
      if (schema === undefined) return false;
      const validate = ajv.compile(schema);
      return validate(value) || expect.fail(`${name}: ${ajv.errorsText(validate.errors)}`);
    };
    const headers = { authorization: 'Bearer k' };
    const put = await call(server.base, 'PUT', '/v1/contexts/doc', { json: { token_budget: 100 }, headers });
    expect(matches('ContextView', put.body)).toBe(true);
    const message = { role: 'user', parts: [{ type: 'text', text: 'hello' }] };
    const appended = await call(server.base, 'POST', '/v1/contexts/doc/messages', {
      json: { message },
      headers,
    });
    expect(matches('AppendResult', appended.body)).toBe(true);
    const tail = await call(server.base, 'GET', '/v1/contexts/doc/tail', { headers });
    expect(matches('TailPage', tail.body)).toBe(true);
    const context = await call(server.base, 'GET', '/v1/contexts/doc/context', { headers });
    expect(matches('LlmContext', context.body)).toBe(true);
    const error = await call(server.base, 'GET', '/v1/contexts/doc/tail?limit=0', { headers });
    expect(matches('Error', error.body)).toBe(true);
    expect(matches('Append', { message })).toBe(true);
  });
});
