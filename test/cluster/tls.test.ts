// Nodes with TLS: the HTTP port serves HTTPS, and everything between nodes (Raft and forwarding over
// gRPC, the internal HTTP calls of discovery) is mutual TLS against the cluster CA, with the cluster
// secret still checked on every call. Three real nodes form a cluster and replicate over it; a
// plaintext gRPC client, and a TLS client whose certificate another CA signed, are turned away at
// the handshake; a client with a cluster certificate but the wrong secret is still refused.

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

import { Client, credentials, Metadata, status } from '@grpc/grpc-js';
import type { ChannelCredentials, ServiceError } from '@grpc/grpc-js';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SERVICE_CALL_PATH } from '../../src/cluster/remote/remote-call-protocol.js';
import {
  clusterSecret,
  createCluster,
  eventually,
  fastRaftEnv,
  type TestCluster,
} from './cluster-harness.js';

const openssl = (dir: string, ...args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
};

/** A CA and one certificate it signed for 127.0.0.1 (as server and client), under `dir`. */
const makePki = (dir: string, name: string): void => {
  openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-ca.key`);
  openssl(
    dir,
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}-ca.key`,
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-out',
    `${name}-ca.crt`,
  );
  openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}-node.key`);
  openssl(
    dir,
    'req',
    '-new',
    '-key',
    `${name}-node.key`,
    '-subj',
    '/CN=fastpaca node',
    '-out',
    `${name}-node.csr`,
  );
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}-node.csr`,
    '-CA',
    `${name}-ca.crt`,
    '-CAkey',
    `${name}-ca.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    `${name}-ext.cnf`,
    '-out',
    `${name}-node.crt`,
  );
};

describe('a cluster with TLS between nodes and on the HTTP port', () => {
  let pki: string;
  let cluster: TestCluster;
  let agent: Agent;
  let bases: string[];

  const file = (name: string): string => join(pki, name);
  const call = async (base: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      dispatcher: agent,
      signal: AbortSignal.timeout(10_000),
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
  };

  beforeAll(async () => {
    pki = mkdtempSync(join(tmpdir(), 'fastpaca-pki-'));
    for (const name of ['cluster', 'rogue']) {
      // Valid for 127.0.0.1 as a server and as a client: every node dials and is dialed.
      execFileSync(
        'sh',
        [
          '-c',
          `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ${name}-ext.cnf`,
        ],
        { cwd: pki },
      );
      makePki(pki, name);
    }
    agent = new Agent({ connect: { ca: readFileSync(file('cluster-ca.crt')) } });
    // The node's directory, laid out as a Kubernetes TLS secret.
    const tlsDir = file('node-tls');
    mkdirSync(tlsDir);
    copyFileSync(file('cluster-node.crt'), join(tlsDir, 'tls.crt'));
    copyFileSync(file('cluster-node.key'), join(tlsDir, 'tls.key'));
    copyFileSync(file('cluster-ca.crt'), join(tlsDir, 'ca.crt'));
    cluster = await createCluster(3, { ...fastRaftEnv, FASTPACA_TLS_DIR: tlsDir });
    for (const node of cluster.nodes) node.start();
    bases = cluster.nodes.map((node) => node.base.replace('http://', 'https://'));
    const deadline = Date.now() + 90_000;
    for (const [i, base] of bases.entries()) {
      for (;;) {
        const ready = await call(base, 'GET', '/health/ready').catch(() => undefined);
        if (ready?.status === 200) break;
        if (Date.now() > deadline)
          throw new Error(`node ${i + 1} not ready:\n${cluster.nodes[i]?.output() ?? ''}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }, 120_000);

  afterAll(async () => {
    await cluster?.destroy();
    await agent?.close();
    if (pki !== undefined) rmSync(pki, { recursive: true, force: true });
  });

  it('forms, replicates and serves HTTPS on every node; plain HTTP gets no answer', async () => {
    const [first, second, third] = bases as [string, string, string];
    expect((await call(first, 'PUT', '/v1/contexts/tls-1', { token_budget: 1000 })).status).toBe(201);
    const appended = await call(second, 'POST', '/v1/contexts/tls-1/messages', {
      message: { role: 'user', parts: [{ type: 'text', text: 'over TLS' }] },
    });
    expect(appended).toMatchObject({ status: 201, body: { seq: 1 } });
    const tail = await call(third, 'GET', '/v1/contexts/tls-1/tail');
    expect(tail.body).toMatchObject({ messages: [{ seq: 1, parts: [{ type: 'text', text: 'over TLS' }] }] });
    const plain = cluster.nodes[0]?.base ?? '';
    await expect(fetch(`${plain}/health/live`, { signal: AbortSignal.timeout(3_000) })).rejects.toThrow();
  });

  it('keeps HTTPS websockets whose upgrade says Connection: close (uWebSockets#1928, the TLS path)', async () => {
    // scripts/patch-uws.mjs mends res.cork for TLS sockets too; unpatched, uWS shut such a stream
    // down right after it opened (see test/stream/websocket-stream.test.ts for the plain-TCP path).
    const [first] = bases as [string];
    expect((await call(first, 'PUT', '/v1/contexts/tls-ws', { token_budget: 1000 })).status).toBe(201);
    const { hostname, port } = new URL(first);
    const ca = readFileSync(file('cluster-ca.crt'));
    const upgrades = Array.from({ length: 5 }, () => {
      const socket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' });
      const state = { socket, received: '', ended: false };
      socket.on('data', (chunk: Buffer) => (state.received += chunk.toString('latin1')));
      socket.on('end', () => (state.ended = true));
      socket.on('error', () => (state.ended = true));
      socket.write(
        `GET /v1/contexts/tls-ws/stream?cursor=0 HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: close\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      return state;
    });
    try {
      await eventually('the 101s', 10_000, async () =>
        upgrades.every((each) => each.received.includes('\r\n\r\n') || each.ended),
      );
      expect(upgrades.map((each) => each.received.slice(0, 12))).toEqual(Array(5).fill('HTTP/1.1 101'));
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(upgrades.filter((each) => each.ended)).toHaveLength(0);
      await call(first, 'POST', '/v1/contexts/tls-ws/messages', {
        message: { role: 'user', parts: [{ type: 'text', text: 'streamed over TLS' }] },
      });
      await eventually('the message frames', 10_000, async () =>
        upgrades.every((each) => each.received.includes('streamed over TLS') || each.ended),
      );
      expect(upgrades.filter((each) => each.ended)).toHaveLength(0);
    } finally {
      for (const each of upgrades) each.socket.destroy();
    }
  });

  it('refuses a plaintext gRPC client and one whose certificate another CA signed, at the handshake', async () => {
    const raft = `127.0.0.1:${cluster.nodes[0]?.raftPort ?? 0}`;
    const tryCall = (channel: ChannelCredentials, secret: string): Promise<number> =>
      new Promise((resolve) => {
        const client = new Client(raft, channel);
        const metadata = new Metadata();
        metadata.set('x-fastpaca-cluster-secret', secret);
        client.makeUnaryRequest<Buffer, Buffer>(
          SERVICE_CALL_PATH,
          (value) => value,
          (value) => value,
          Buffer.from('{}'),
          metadata,
          { deadline: Date.now() + 5_000 },
          (error: ServiceError | null) => {
            client.close();
            resolve(error === null ? status.OK : error.code);
          },
        );
      });
    const ca = readFileSync(file('cluster-ca.crt'));
    const own = credentials.createSsl(
      ca,
      readFileSync(file('cluster-node.key')),
      readFileSync(file('cluster-node.crt')),
    );
    const rogue = credentials.createSsl(
      ca,
      readFileSync(file('rogue-node.key')),
      readFileSync(file('rogue-node.crt')),
    );
    expect(await tryCall(credentials.createInsecure(), clusterSecret)).toBe(status.UNAVAILABLE);
    expect(await tryCall(rogue, clusterSecret)).toBe(status.UNAVAILABLE);
    // The handshake passes with a cluster certificate: the secret is still checked after it.
    expect(await tryCall(own, 'not-the-cluster-secret-at-all')).toBe(status.UNAUTHENTICATED);
  });
});
