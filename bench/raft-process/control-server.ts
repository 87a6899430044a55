// The raft process's control interface for tests and the benchmark: plain HTTP/JSON on 127.0.0.1.
//   GET  /status                        node status: every group's Raft status, host and transport counters
//   POST /peers        {id: "h:p", ...} set the peer addresses
//   POST /propose?group=g[&timeoutMs=]  body = entry bytes → the host's ProposeOutcome as JSON
//   GET  /read?group=g                  ReadIndex, then the group's summary (a linearizable read)
//   GET  /dump?group=g                  the group's durable state-machine space (hex pairs) and an
//                                       applied index it reflects at least; a local read
//   POST /transfer?group=g&to=id        ask this node (if it leads g) to hand leadership to `to`
//   POST /load?durationMs=&concurrency=&entryBytes=&timeoutMs=
//                                       closed-loop proposals to the groups this node leads (load.ts)
// Bad input answers 400 with {error}; the process never trusts it further than that.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GroupId } from '../../raft/index.js';
import { runLoad } from './load.js';
import type { RaftNode } from './raft-node.js';

const BODY_BYTES_MAX = 8 * 1024 * 1024;

class BadRequest extends Error {}

const readBody = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_BYTES_MAX) throw new BadRequest('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
};

const intParam = (url: URL, name: string, fallback?: number): number => {
  const raw = url.searchParams.get(name);
  if (raw === null) {
    if (fallback === undefined) throw new BadRequest(`missing query parameter ${name}`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new BadRequest(`${name} must be an integer >= 0`);
  return value;
};

const send = (response: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
};

const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');

export interface ControlServer {
  readonly port: number;
  close(): Promise<void>;
}

export const startControlServer = async (node: RaftNode, port: number): Promise<ControlServer> => {
  const { host } = node;
  const group = (url: URL): GroupId => {
    const value = intParam(url, 'group');
    if (host.status(value) === undefined) throw new BadRequest(`group ${value} is not hosted here`);
    return value;
  };

  const route = async (request: IncomingMessage, url: URL): Promise<[number, unknown]> => {
    const key = `${request.method ?? ''} ${url.pathname}`;
    switch (key) {
      case 'GET /status':
        return [200, node.status()];
      case 'POST /peers': {
        const parsed: unknown = JSON.parse((await readBody(request)).toString('utf8'));
        if (typeof parsed !== 'object' || parsed === null) throw new BadRequest('peers must be an object');
        const peers = new Map<string, string>();
        for (const [id, address] of Object.entries(parsed)) {
          if (typeof address !== 'string') throw new BadRequest(`address of ${id} must be a string`);
          peers.set(id, address);
        }
        node.setPeers(peers);
        return [200, { peers: peers.size }];
      }
      case 'POST /propose': {
        const target = group(url);
        const timeoutMs = intParam(url, 'timeoutMs', 5_000);
        const body = await readBody(request);
        if (body.length === 0) throw new BadRequest('empty entry');
        return [200, await host.propose(target, new Uint8Array(body), { timeoutMs })];
      }
      case 'GET /read': {
        const target = group(url);
        const read = await host.readIndex(target, { timeoutMs: intParam(url, 'timeoutMs', 5_000) });
        if (!read.ok) return [200, read];
        const summary = await node.stateMachine.summary(target, host.groupKv(target));
        return [200, { ok: true, index: read.index, ...summary }];
      }
      case 'GET /dump': {
        const target = group(url);
        // Read before the iterator opens: its view then reflects at least this applied index.
        const applied = node.stateMachine.durableApplied(target);
        const pairs: [string, string][] = [];
        for await (const [k, v] of host.groupKv(target).iterate({})) pairs.push([hex(k), hex(v)]);
        return [200, { group: target, applied, pairs }];
      }
      case 'POST /transfer': {
        const target = group(url);
        const to = url.searchParams.get('to');
        if (to === null || to === '') throw new BadRequest('missing query parameter to');
        host.transferLeader(target, to);
        return [200, { group: target, to }];
      }
      case 'POST /load': {
        const result = await runLoad(host, node.ledGroups(), {
          durationMs: intParam(url, 'durationMs'),
          concurrency: intParam(url, 'concurrency'),
          entryBytes: Math.max(1, intParam(url, 'entryBytes', 300)),
          timeoutMs: intParam(url, 'timeoutMs', 10_000),
        });
        const samples = Buffer.from(result.latenciesUs.buffer, 0, result.latenciesUs.byteLength);
        return [
          200,
          {
            ok: result.ok,
            failures: result.failures,
            elapsedMs: result.elapsedMs,
            latenciesUs: samples.toString('base64'),
          },
        ];
      }
      default:
        return [404, { error: `no route ${key}` }];
    }
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    route(request, url).then(
      ([status, body]) => send(response, status, body),
      (error: unknown) => {
        const bad = error instanceof BadRequest || error instanceof SyntaxError;
        send(response, bad ? 400 : 500, { error: error instanceof Error ? error.message : String(error) });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
