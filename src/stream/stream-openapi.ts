// The OpenAPI description of the two stream endpoints (the route table describes request/response
// routes; these hand the connection over). Frames and close codes as README "Live streams" says.

import { CloseCode } from './close-codes.js';

type JsonDoc = Record<string, unknown>;

const version = { type: 'integer', minimum: 0 };

/** One frame (websocket message, or an SSE event's data). */
export const streamFrameSchema: JsonDoc = {
  description: 'A stream frame: JSON with `type`; events of the context carry the `version` they happened at',
  oneOf: [
    {
      type: 'object',
      required: ['type', 'version', 'seq', 'message'],
      properties: {
        type: { const: 'message' },
        version,
        seq: { type: 'integer' },
        message: { type: 'object' },
      },
    },
    {
      type: 'object',
      required: ['type', 'version', 'change'],
      properties: {
        type: { const: 'context' },
        version,
        change: { enum: ['created', 'updated', 'metadata', 'window'] },
        needs_compaction: { type: 'boolean' },
        used_tokens: { type: 'integer' },
      },
    },
    {
      type: 'object',
      required: ['type', 'version', 'reason'],
      properties: {
        type: { const: 'compaction' },
        version,
        reason: { enum: ['policy', 'replace'] },
        range: {
          type: 'object',
          properties: { from_seq: { type: 'integer' }, to_seq: { type: 'integer' } },
        },
      },
    },
    { type: 'object', required: ['type', 'version'], properties: { type: { const: 'tombstoned' }, version } },
    { type: 'object', required: ['type', 'version'], properties: { type: { const: 'reset' }, version } },
    {
      type: 'object',
      description:
        'Versions expected .. actual-1 cannot be sent; the stream continues from actual. With an archive, ' +
        'only for history the archive lacks (rows pruned there, or archived before schema 2 without their ' +
        'window change); without one, for a cursor older than what the node holds (read /messages)',
      required: ['type', 'expected', 'actual'],
      properties: { type: { const: 'gap' }, expected: version, actual: version },
    },
    { type: 'object', required: ['type'], properties: { type: { const: 'ping' } } },
  ],
};

const closeCodes = Object.entries(CloseCode)
  .map(([name, code]) => `${code} ${name}`)
  .join(', ');

const parameters = (sse: boolean): JsonDoc[] => [
  { name: 'id', in: 'path', required: true, description: 'URL-encoded', schema: { type: 'string' } },
  {
    name: 'cursor',
    in: 'query',
    required: false,
    description:
      'The last version the client has (default 0): every event after it is replayed, history the ' +
      'archiver trimmed from the nodes read back from the archive when one is configured',
    schema: version,
  },
  {
    name: 'include_messages',
    in: 'query',
    required: false,
    description: 'false leaves out `message` frames (default true)',
    schema: { type: 'boolean' },
  },
  ...(sse
    ? [
        {
          name: 'Last-Event-ID',
          in: 'header',
          required: false,
          description: 'Sent by a reconnecting EventSource; takes the place of ?cursor',
          schema: { type: 'string' },
        },
      ]
    : []),
];

const errors = (codes: Record<string, string>): JsonDoc =>
  Object.fromEntries(
    Object.entries(codes).map(([status, description]) => [
      status,
      { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    ]),
  );

const refusals = errors({
  '400': 'Error: invalid_context_id | invalid_query (cursor, include_messages, Last-Event-ID)',
  '401': 'Error: unauthorized',
  '404': 'Error: context_not_found',
  '503': `Error: overloaded (more than FASTPACA_STREAM_MAX_CONNECTIONS streams on this node; Retry-After) | raft_unavailable | raft_timeout`,
});

export const streamPaths = (): JsonDoc => ({
  '/v1/contexts/{id}/stream': {
    get: {
      operationId: 'streamContext',
      summary:
        'Websocket: replay every event after the cursor, then live events, with no gap and no duplicate',
      description:
        'Upgrade to a websocket. Frames are JSON (StreamFrame); one append is one version and its frames ' +
        'arrive together. The server pings every 30 s ({"type":"ping"}); any client frame (e.g. ' +
        '{"type":"pong"}) counts as life, 90 s without one closes. Client frames are limited to 4 KiB. ' +
        `Close codes: ${closeCodes}. After any close but 1000, reconnect with the last version received as cursor ` +
        '(1013 also when the archive did not answer during a replay of archived history: reconnect later).',
      security: [{ bearer: [] }],
      parameters: parameters(false),
      responses: {
        '101': {
          description: 'Switching protocols: the stream',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/StreamFrame' } } },
        },
        ...refusals,
        ...errors({ '426': 'Error: upgrade_required (a GET without a websocket upgrade)' }),
      },
    },
  },
  '/v1/contexts/{id}/events': {
    get: {
      operationId: 'streamContextEvents',
      summary: 'The same stream as Server-Sent Events',
      description:
        'Each frame is an event: `event:` its type, `data:` its JSON, `id:` the cursor to resume from after ' +
        'it (the version; for a gap, actual - 1). A stream the server ends gets a last `close` event ' +
        `{"type":"close","code","reason"} with the websocket close code (${closeCodes}).`,
      security: [{ bearer: [] }],
      parameters: parameters(true),
      responses: {
        '200': {
          description: 'The event stream',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        ...refusals,
      },
    },
  },
});
