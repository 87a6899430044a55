// A websocket subscriber for the tests (the `ws` package): collects every frame, waits (bounded)
// for conditions on them, and reports how the server closed the stream.

import WebSocket from 'ws';

export interface Frame {
  readonly type: string;
  readonly version?: number;
  readonly seq?: number;
  readonly [field: string]: unknown;
}

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

export interface StreamClientOptions {
  readonly cursor?: number;
  readonly includeMessages?: boolean;
  readonly apiKey?: string;
  /** The query string as is (instead of cursor and includeMessages). */
  readonly rawQuery?: string;
  /** Answer each ping frame with {"type":"pong"} (default true). */
  readonly answerPings?: boolean;
}

export class StreamClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  private readonly waiters = new Set<() => void>();
  /** How the server closed the stream, once it did (for the failure message of until()). */
  private closedWith: Closed | undefined;
  /** The socket's error, if it had one (a frame the client refused, a reset): closes are then 1006. */
  private socketError: Error | undefined;
  /** When the stream opened and closed, in ms from the client's creation (for failure messages). */
  private readonly createdAt = Date.now();
  private openedAfterMs: number | undefined;
  private closedAfterMs: number | undefined;

  private constructor(
    readonly socket: WebSocket,
    answerPings: boolean,
  ) {
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Frame;
      this.frames.push(frame);
      if (frame.type === 'ping' && answerPings) socket.send(JSON.stringify({ type: 'pong' }));
      for (const wake of this.waiters) wake();
    });
    socket.on('error', (error: Error) => {
      this.socketError = error;
    });
    socket.once('open', () => {
      this.openedAfterMs = Date.now() - this.createdAt;
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code: number, reason: Buffer) => {
        this.closedWith = { code, reason: reason.toString('utf8') };
        this.closedAfterMs = Date.now() - this.createdAt;
        resolve(this.closedWith);
        for (const wake of this.waiters) wake();
      });
    });
  }

  static url(base: string, contextId: string, options: StreamClientOptions = {}): string {
    if (options.rawQuery !== undefined)
      return `${base.replace(/^http/, 'ws')}/v1/contexts/${encodeURIComponent(contextId)}/stream?${options.rawQuery}`;
    const query = new URLSearchParams();
    if (options.cursor !== undefined) query.set('cursor', String(options.cursor));
    if (options.includeMessages !== undefined) query.set('include_messages', String(options.includeMessages));
    return `${base.replace(/^http/, 'ws')}/v1/contexts/${encodeURIComponent(contextId)}/stream?${query.toString()}`;
  }

  /** Opens a stream; rejects with the HTTP status when the upgrade is refused. */
  static connect(base: string, contextId: string, options: StreamClientOptions = {}): Promise<StreamClient> {
    const headers: Record<string, string> =
      options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` };
    const socket = new WebSocket(StreamClient.url(base, contextId, options), { headers });
    const client = new StreamClient(socket, options.answerPings ?? true);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        response.on('end', () =>
          reject(new UpgradeRefused(response.statusCode ?? 0, body, response.headers)),
        );
      });
      socket.once('error', reject);
    });
  }

  /** The versioned frames' highest version so far (the cursor to resume from). */
  get lastVersion(): number {
    let last = 0;
    for (const frame of this.frames)
      if (frame.version !== undefined && frame.version > last) last = frame.version;
    return last;
  }

  /** Waits until `done()` holds, at most `timeoutMs`. */
  async until(done: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `stream client: ${what} not met within ${timeoutMs} ms (${this.frames.length} frames, ` +
            (this.closedWith === undefined
              ? 'still open)'
              : `closed ${this.closedWith.code} ${JSON.stringify(this.closedWith.reason)} ` +
                `${this.closedAfterMs ?? '-'} ms after connecting (opened after ${this.openedAfterMs ?? '-'} ms)` +
                (this.socketError === undefined ? ')' : `, socket error: ${this.socketError.message})`)),
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        const wake = (): void => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
      });
    }
  }

  untilVersion(version: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.lastVersion >= version, timeoutMs, `version ${version}`);
  }

  close(): void {
    this.socket.close();
  }
}

export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string | string[] | undefined>,
  ) {
    super(`upgrade refused with ${status}: ${body}`);
  }
}

/** The refusal of a stream that was expected to fail to open. */
export const refusal = async (opening: Promise<StreamClient>): Promise<UpgradeRefused> => {
  try {
    const client = await opening;
    client.close();
  } catch (error) {
    if (error instanceof UpgradeRefused) return error;
    throw error;
  }
  throw new Error('the stream opened');
};
