// A lean HTTP/1.1 keep-alive client for the load generator: one socket, one request at a time, the
// request written as one string and the response parsed just far enough to get its status and body.
// The load generator shares the 2-core machine with the node it measures; undici costs ~150 µs of
// CPU per request here, which the node then cannot use. This client costs a fraction of that,
// like wrk or autocannon would, while still doing real HTTP over TCP and reading every response.
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly body: string;
}

const headerEnd = Buffer.from('\r\n\r\n');

export class RawHttpConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private waiter:
    | { readonly resolve: (response: RawResponse) => void; readonly reject: (error: Error) => void }
    | undefined;
  private failure: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly hostHeader: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
      this.parse();
    });
    const fail = (error: Error): void => {
      this.failure ??= error;
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.reject(this.failure);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static open(url: string): Promise<RawHttpConnection> {
    const { hostname, port, host } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port || 80) }, () => {
        socket.off('error', reject);
        resolve(new RawHttpConnection(socket, host));
      });
      socket.once('error', reject);
    });
  }

  /** False once the socket failed or closed (e.g. the server dropped it after an idle timeout). */
  get usable(): boolean {
    return this.failure === undefined;
  }

  /** Sends one request and resolves with its response; calls must not overlap. */
  request(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    body: string,
  ): Promise<RawResponse> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiter !== undefined) return Promise.reject(new Error('requests on one connection overlap'));
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.write(`${head}\r\n${body}`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private parse(): void {
    if (this.waiter === undefined) return;
    const end = this.buffered.indexOf(headerEnd);
    if (end < 0) return;
    const head = this.buffered.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (length === null) {
      // uWS always sends Content-Length for complete bodies; anything else is not what we measure.
      this.socket.destroy(new Error(`response without content-length: ${head.split('\r\n')[0]}`));
      return;
    }
    const bodyStart = end + headerEnd.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.buffered.length < bodyEnd) return;
    const body = this.buffered.toString('utf8', bodyStart, bodyEnd);
    this.buffered = this.buffered.subarray(bodyEnd);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter.resolve({ status, body });
  }
}
