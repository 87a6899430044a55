// HTTP/2 windows between nodes (net/peer-windows.ts): a connection whose call carried the cluster
// secret is granted wide flow-control windows (8 MiB per stream, 32 MiB per connection), so one
// turn's batch crosses in one round trip instead of 64 KiB per turn of the receiver's loop; a caller
// without the secret keeps HTTP/2's default 64 KiB, so refused calls still cannot make a node buffer.
// Observed from a raw HTTP/2 client: the SETTINGS the server sends and the window it grants.

import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';

import { afterEach, describe, expect, it } from 'vitest';

import { SECRET_METADATA_KEY } from '../../../net/auth.js';
import { PEER_CONNECTION_WINDOW_BYTES, PEER_STREAM_WINDOW_BYTES } from '../../../net/peer-windows.js';
import { STREAM_PATH } from '../../../raft/transport/grpc-service.js';
import { Cluster, SECRET, waitFor } from './harness.js';

const DEFAULT_WINDOW_BYTES = 65_535;

const cluster = new Cluster();
const sessions: ClientHttp2Session[] = [];

afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy();
  await cluster.stopAll();
});

/** Opens a Raft stream call with the given headers; resolves when the server answered or closed it. */
const call = (session: ClientHttp2Session, headers: Record<string, string>): Promise<string | undefined> =>
  new Promise((resolve) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': STREAM_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    stream.on('error', () => {});
    stream.on('response', (response) => resolve(response['grpc-status']?.toString() ?? 'open'));
    stream.on('close', () => resolve(undefined));
    setTimeout(() => resolve(undefined), 5_000).unref();
  });

const openSession = (address: string): ClientHttp2Session => {
  const session = http2Connect(`http://${address}`);
  session.on('error', () => {});
  sessions.push(session);
  return session;
};

describe('flow-control windows of a node’s gRPC port', () => {
  it('a caller with the cluster secret gets wide windows on its connection', async () => {
    const node = await cluster.start('node-1');
    const session = openSession(node.address);
    await call(session, { [SECRET_METADATA_KEY]: SECRET });
    await waitFor(
      'the server to send its widened SETTINGS and connection window',
      () =>
        session.remoteSettings.initialWindowSize === PEER_STREAM_WINDOW_BYTES &&
        (session.state.remoteWindowSize ?? 0) >= PEER_CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW_BYTES,
      5_000,
    );
  });

  it('a caller without the secret is refused and keeps the 64 KiB default', async () => {
    const node = await cluster.start('node-1');
    const session = openSession(node.address);
    const answer = await call(session, {});
    expect(answer).toBe('16'); // UNAUTHENTICATED
    // Give a (wrong) SETTINGS frame time to arrive before reading what the server granted.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(session.remoteSettings.initialWindowSize).toBe(DEFAULT_WINDOW_BYTES);
    expect(session.state.remoteWindowSize ?? 0).toBeLessThanOrEqual(DEFAULT_WINDOW_BYTES);
  });

  it('a wrong secret is refused and keeps the 64 KiB default', async () => {
    const node = await cluster.start('node-1');
    const session = openSession(node.address);
    const answer = await call(session, { [SECRET_METADATA_KEY]: 'not-the-secret' });
    expect(answer).toBe('16');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(session.remoteSettings.initialWindowSize).toBe(DEFAULT_WINDOW_BYTES);
  });
});
