// A TCP proxy the fault suite controls, listening on 127.0.0.1 and forwarding to one target on
// 127.0.0.1. Each direction (`up`: client → target, `down`: target → client) can be
//   - blocked: its bytes are discarded (a black hole: the connection stays open, nothing arrives),
//   - delayed: each chunk is delivered `delayMs` later, in order,
//   - lossy: each chunk is lost with `dropProbability`, and a lost chunk resets its connection (a
//     TCP stream cannot skip bytes, so loss the stack cannot repair shows up as a broken connection).
// A connection that lost bytes to a block is reset when the block lifts (its stream has a hole).
// `cut()` black-holes both directions; new connections are accepted and held silent while cut.
// Buffers are bounded: a delayed direction holding more than `bufferBytesMax` pauses its source
// (TCP backpressure), and a socket whose peer does not read pauses its source the same way.

import { createServer, type Server, type Socket, connect } from 'node:net';

export interface DirectionFault {
  readonly blocked: boolean;
  readonly delayMs: number;
  readonly dropProbability: number;
}

export interface ProxyFaults {
  readonly up: DirectionFault;
  readonly down: DirectionFault;
}

export const passing: DirectionFault = { blocked: false, delayMs: 0, dropProbability: 0 };

export interface ProxyStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
  discardedBytes: number;
  resets: number;
}

export interface TcpProxy {
  readonly port: number;
  readonly name: string;
  faults(): ProxyFaults;
  /** Sets both directions (a direction not given passes). */
  set(faults: Partial<ProxyFaults>): void;
  pass(): void;
  cut(): void;
  /** Only one direction black-holed. */
  cutOneWay(direction: 'up' | 'down'): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  readonly name: string;
  readonly listenPort: number;
  readonly targetPort: number;
  readonly bufferBytesMax?: number;
  readonly random?: () => number;
}

interface Pipe {
  readonly from: Socket;
  readonly to: Socket;
  readonly direction: 'up' | 'down';
  queuedBytes: number;
  /** Bytes were discarded while blocked: the stream has a hole. */
  holed: boolean;
  awaitingDrain: boolean;
}

interface Connection {
  readonly client: Socket;
  target: Socket | undefined;
  readonly pipes: Pipe[];
  closed: boolean;
}

export const startTcpProxy = (options: TcpProxyOptions): Promise<TcpProxy> => {
  const bufferBytesMax = options.bufferBytesMax ?? 4 * 1024 * 1024;
  const random = options.random ?? Math.random;
  let current: ProxyFaults = { up: passing, down: passing };
  const connections = new Set<Connection>();
  const stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, discardedBytes: 0, resets: 0 };

  const reset = (connection: Connection): void => {
    if (connection.closed) return;
    connection.closed = true;
    stats.resets += 1;
    connection.client.resetAndDestroy();
    connection.target?.resetAndDestroy();
    connections.delete(connection);
  };

  const close = (connection: Connection): void => {
    if (connection.closed) return;
    connection.closed = true;
    connection.client.destroy();
    connection.target?.destroy();
    connections.delete(connection);
  };

  const wire = (connection: Connection, pipe: Pipe): void => {
    const { from, to, direction } = pipe;
    from.on('data', (chunk: Buffer) => {
      if (connection.closed) return;
      const fault = current[direction];
      if (fault.blocked) {
        stats.discardedBytes += chunk.length;
        pipe.holed = true;
        return;
      }
      if (fault.dropProbability > 0 && random() < fault.dropProbability) {
        stats.discardedBytes += chunk.length;
        reset(connection);
        return;
      }
      if (direction === 'up') stats.bytesUp += chunk.length;
      else stats.bytesDown += chunk.length;
      const deliver = (): void => {
        pipe.queuedBytes -= chunk.length;
        if (connection.closed) return;
        if (!to.write(chunk)) {
          from.pause();
          if (!pipe.awaitingDrain) {
            pipe.awaitingDrain = true;
            to.once('drain', () => {
              pipe.awaitingDrain = false;
              from.resume();
            });
          }
        } else if (pipe.queuedBytes < bufferBytesMax / 2 && from.isPaused()) {
          from.resume();
        }
      };
      pipe.queuedBytes += chunk.length;
      if (fault.delayMs > 0) {
        if (pipe.queuedBytes > bufferBytesMax) from.pause();
        setTimeout(deliver, fault.delayMs);
      } else {
        deliver();
      }
    });
    from.on('end', () => {
      if (!connection.closed) to.end();
    });
  };

  const server: Server = createServer((client) => {
    stats.connections += 1;
    const connection: Connection = { client, target: undefined, pipes: [], closed: false };
    connections.add(connection);
    client.on('error', () => close(connection));
    client.on('close', () => close(connection));
    const target = connect({ host: '127.0.0.1', port: options.targetPort });
    connection.target = target;
    target.on('error', () => close(connection));
    target.on('close', () => close(connection));
    const up: Pipe = {
      from: client,
      to: target,
      direction: 'up',
      queuedBytes: 0,
      holed: false,
      awaitingDrain: false,
    };
    const down: Pipe = {
      from: target,
      to: client,
      direction: 'down',
      queuedBytes: 0,
      holed: false,
      awaitingDrain: false,
    };
    connection.pipes.push(up, down);
    wire(connection, up);
    wire(connection, down);
  });

  const set = (faults: Partial<ProxyFaults>): void => {
    const before = current;
    current = { up: faults.up ?? passing, down: faults.down ?? passing };
    // A direction no longer blocked: connections that lost bytes to the block have a hole; reset them.
    for (const direction of ['up', 'down'] as const) {
      if (before[direction].blocked && !current[direction].blocked) {
        for (const connection of [...connections]) {
          if (connection.pipes.some((pipe) => pipe.direction === direction && pipe.holed)) reset(connection);
        }
      }
    }
  };

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort, '127.0.0.1', () => {
      resolve({
        port: options.listenPort,
        name: options.name,
        faults: () => current,
        set,
        pass: () => set({}),
        cut: () => set({ up: { ...passing, blocked: true }, down: { ...passing, blocked: true } }),
        cutOneWay: (direction) => set({ [direction]: { ...passing, blocked: true } }),
        stats: () => ({ ...stats }),
        close: () =>
          new Promise<void>((done) => {
            for (const connection of [...connections]) close(connection);
            server.close(() => done());
          }),
      });
    });
  });
};
