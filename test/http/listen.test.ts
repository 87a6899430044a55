// The gateway's port is its own: uWS listens with SO_REUSEPORT unless told otherwise, and a second
// node started on a taken port would then start without an error and take half of the connections.
import uWS from 'uWebSockets.js';
import { describe, expect, it } from 'vitest';

import { freePort } from '../e2e/process-harness.js';
import { startTestServer } from './harness.js';

describe('the HTTP gateway listen', () => {
  it('a second gateway on the same port fails to start, and the first keeps every request', async () => {
    const port = await freePort();
    const first = await startTestServer({ port });
    try {
      await expect(startTestServer({ port })).rejects.toThrow(/could not listen .*port taken/);
      for (let n = 0; n < 6; n++) {
        const response = await fetch(`${first.base}/health/live`);
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      }
    } finally {
      await first.close();
    }
  });

  it('does not start on a port another uWS server holds, even one that shares its port', async () => {
    const other = uWS.App();
    const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
      other.listen('127.0.0.1', 0, (socket) =>
        socket === false ? reject(new Error('no port')) : resolve(socket),
      ),
    );
    try {
      const port = uWS.us_socket_local_port(listenSocket);
      await expect(startTestServer({ port })).rejects.toThrow(/could not listen/);
    } finally {
      uWS.us_listen_socket_close(listenSocket);
    }
  });
});
