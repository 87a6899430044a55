// Forwarding over one long-lived bidi stream per peer: the proposals a node forwards to a leader in
// one event-loop pass travel as one message, and the leader's answers come back batched the same
// way. A unary gRPC call per write cost more CPU than the Raft work it carried (a new HTTP/2 stream,
// headers and status every time); here a write costs a few array slots in a shared message.
//
// What the caller may conclude when the stream breaks stays exactly as with unary calls: requests
// still queued here were never written, so they are "unsent" (retrying cannot duplicate them); requests
// written and not answered are "ambiguous" (the leader may have proposed them).
//
//   client → server  [[id, group, timeoutMs, command bytes], ...]
//   server → client  HELLO once the call passed authentication, then
//                    [[id, outcome] | [id, null, "unsent" | "ambiguous", reason], ...]

import { Client, status } from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';

import type { GroupId, NodeId } from '../../../raft/index.js';
import type { SecretCheck } from '../../../net/auth.js';
import {
  clientOptions,
  PEER_BATCH_BYTES_TARGET,
  PEER_MESSAGE_BYTES_MAX,
  peerChannelCredentials,
} from '../../../net/grpc.js';
import type { PeerTls } from '../../../net/grpc.js';
import { dialHelloStream, sendHello } from '../../../net/hello-stream.js';
import type { HelloStream } from '../../../net/hello-stream.js';
import type { ForwardResult, Forwarder } from './forward-client.js';
import {
  checkForwardOutcome,
  checkForwardRequest,
  FORWARD_STREAM_PATH,
  ForwardCodecError,
  forwardOutcomeValue,
  packr,
} from './forward-protocol.js';
import type { LocalPropose } from './forward-server.js';

/** Extra time the caller waits beyond the leader's own proposal timeout, for the answer to travel. */
const answerSlackMs = 1_000;

/** Requests per client message (with batchBytesTarget, bounds the work one message carries). */
const requestsPerMessageMax = 256;

// ---------------------------------------------------------------------------------------------
// Server side

const refuse = (call: ServerDuplexStream<Uint8Array, Uint8Array>, code: status, details: string): void => {
  // grpc-js turns an 'error' on a server stream into the call's final status.
  call.emit('error', Object.assign(new Error(details), { code, details }));
};

/** Handles one ProposeStream call: proposes each request locally and batches the answers. */
export const handleForwardStream = (
  checkSecret: SecretCheck,
  propose: () => LocalPropose | undefined,
  call: ServerDuplexStream<Uint8Array, Uint8Array>,
): void => {
  if (!checkSecret(call.metadata)) {
    refuse(call, status.UNAUTHENTICATED, 'missing or wrong cluster secret');
    return;
  }
  let open = true;
  let answers: unknown[] = [];
  const flush = (): void => {
    const batch = answers;
    answers = [];
    if (open && batch.length > 0) call.write(packr.pack(batch));
  };
  const answer = (entry: unknown[]): void => {
    if (answers.length === 0) setImmediate(flush);
    answers.push(entry);
  };
  const handle = (request: unknown): void => {
    if (!Array.isArray(request) || request.length !== 4 || typeof request[0] !== 'number') {
      throw new ForwardCodecError('forward stream request shape');
    }
    const [id, group, timeoutMs, data] = request as [number, unknown, unknown, unknown];
    let checked;
    try {
      checked = checkForwardRequest(group, timeoutMs, data);
    } catch (error) {
      answer([id, null, 'unsent', (error as Error).message]);
      return;
    }
    const local = propose();
    if (local === undefined) {
      answer([id, { ok: false, code: 'NOT_LEADER', leader: null }]);
      return;
    }
    local(checked.group, checked.data, checked.timeoutMs).then(
      (outcome) => answer([id, forwardOutcomeValue(outcome)]),
      (error: unknown) => answer([id, null, 'ambiguous', `leader failed: ${(error as Error).message}`]),
    );
  };
  call.on('data', (bytes: Uint8Array) => {
    if (!open) return;
    try {
      const requests: unknown = packr.unpack(bytes);
      if (!Array.isArray(requests)) throw new ForwardCodecError('forward stream message shape');
      for (const request of requests) handle(request);
    } catch (error) {
      // A message we cannot read names no requests we could answer: end the call, the caller
      // treats what it wrote as ambiguous.
      open = false;
      refuse(
        call,
        status.INVALID_ARGUMENT,
        `undecodable forward stream message: ${(error as Error).message}`,
      );
    }
  });
  call.on('cancelled', () => {
    open = false;
  });
  call.on('end', () => {
    flush();
    open = false;
    call.end();
  });
  sendHello(call);
};

// ---------------------------------------------------------------------------------------------
// Client side

interface PendingForward {
  readonly id: number;
  readonly group: GroupId;
  readonly timeoutMs: number;
  readonly data: Uint8Array;
  readonly deadlineMs: number;
  readonly resolve: (result: ForwardResult) => void;
}

type StreamState = 'connecting' | 'open' | 'backoff' | 'closed';

export interface ForwardStreamOptions {
  readonly clusterSecret: string | undefined;
  /** Mutual TLS between nodes (net/grpc.ts); plain TCP when absent. */
  readonly tls?: PeerTls | undefined;
  /** Largest message either way. Default PEER_MESSAGE_BYTES_MAX (one command of any accepted size fits). */
  readonly messageBytesMax?: number;
  /**
   * Requests written together are cut into messages of at most this many command bytes; a single
   * larger command travels alone. The leader's limit is on one message, not on how many requests
   * arrived in one pass of the loop. Default 8 MiB.
   */
  readonly batchBytesTarget?: number;
  /** Requests queued or awaiting an answer per peer; past it a forward is refused (unsent). */
  readonly inFlightMax?: number;
  /** A dial not confirmed by the server's HELLO within this long counts as failed. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /** Redial pacing after a break: doubles from initial to max. Default 50 → 1000 ms. */
  readonly reconnectBackoffMs?: { readonly initial: number; readonly max: number };
}

/** One peer's stream: dialed lazily, redialed after a break with backoff. */
class PeerForwardStream {
  private state: StreamState = 'backoff';
  private readonly client: Client;
  private stream: HelloStream | undefined;
  /** Not yet written: unsent if the stream breaks. */
  private queued: PendingForward[] = [];
  /** Written, not answered: ambiguous if the stream breaks. */
  private readonly inFlight = new Map<number, PendingForward>();
  private nextId = 1;
  private failures = 0;
  private retryAtMs = 0;
  private lastProblem = 'not connected yet';
  private flushScheduled = false;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    readonly address: string,
    private readonly options: Required<ForwardStreamOptions>,
  ) {
    this.client = new Client(
      address,
      peerChannelCredentials(options.tls),
      clientOptions({
        frameBytesMax: options.messageBytesMax,
        reconnectBackoffMs: options.reconnectBackoffMs,
      }),
    );
    this.sweepTimer = setInterval(() => this.expire(Date.now()), 100);
    this.sweepTimer.unref();
  }

  propose(group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult> {
    if (this.state === 'closed') return Promise.resolve({ kind: 'unsent', reason: 'forwarder closed' });
    if (this.state === 'backoff') {
      if (Date.now() < this.retryAtMs) {
        return Promise.resolve({ kind: 'unsent', reason: `No connection established: ${this.lastProblem}` });
      }
      this.dial();
    }
    if (this.queued.length + this.inFlight.size >= this.options.inFlightMax) {
      return Promise.resolve({ kind: 'unsent', reason: 'forward queue to the leader is full' });
    }
    return new Promise<ForwardResult>((resolve) => {
      const id = this.nextId;
      this.nextId = id >= 0x7fff_ffff ? 1 : id + 1;
      const deadlineMs = Date.now() + timeoutMs + answerSlackMs;
      this.queued.push({ id, group, timeoutMs, data, deadlineMs, resolve });
      this.scheduleFlush();
    });
  }

  close(): void {
    if (this.state === 'closed') return;
    this.fail('forwarder closed');
    this.state = 'closed';
    clearInterval(this.sweepTimer);
    this.client.close();
  }

  private dial(): void {
    this.state = 'connecting';
    this.stream = dialHelloStream(this.client, {
      path: FORWARD_STREAM_PATH,
      clusterSecret: this.options.clusterSecret,
      connectTimeoutMs: this.options.connectTimeoutMs,
      onOpen: () => this.opened(),
      onMessage: (bytes) => this.receive(bytes),
      onBroken: ({ code, details }) => this.broken(`${status[code] ?? code}: ${details}`),
    });
  }

  private opened(): void {
    this.state = 'open';
    this.failures = 0;
    this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // After the poll phase: every request that arrived in this pass of the loop shares a message.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const call = this.stream?.call;
    if (this.state !== 'open' || call === undefined) return;
    while (this.queued.length > 0) {
      const batch = this.queued.splice(0, this.batchLength());
      for (const pending of batch) this.inFlight.set(pending.id, pending);
      call.write(packr.pack(batch.map((p) => [p.id, p.group, p.timeoutMs, p.data])));
    }
  }

  /** How many of the queued requests the next message takes: at least one. */
  private batchLength(): number {
    const countMax = Math.min(this.queued.length, requestsPerMessageMax);
    let bytes = 0;
    for (let count = 0; count < countMax; count++) {
      bytes += (this.queued[count] as PendingForward).data.byteLength;
      if (bytes > this.options.batchBytesTarget) return Math.max(1, count);
    }
    return countMax;
  }

  private receive(bytes: Uint8Array): void {
    let answers: unknown;
    try {
      answers = packr.unpack(bytes);
      if (!Array.isArray(answers)) throw new ForwardCodecError('forward stream answer shape');
    } catch (error) {
      this.broken(`undecodable answer: ${(error as Error).message}`);
      return;
    }
    for (const answer of answers as unknown[]) {
      if (!Array.isArray(answer) || typeof answer[0] !== 'number') continue;
      const pending = this.inFlight.get(answer[0]);
      if (pending === undefined) continue;
      this.inFlight.delete(pending.id);
      pending.resolve(settle(answer));
    }
  }

  private broken(reason: string): void {
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.lastProblem = reason;
    this.fail(reason);
    this.failures += 1;
    const { initial, max } = this.options.reconnectBackoffMs;
    this.retryAtMs = Date.now() + Math.min(max, initial * 2 ** (this.failures - 1));
    this.state = 'backoff';
  }

  /** Settles everything outstanding: queued requests were never sent, written ones may have been. */
  private fail(reason: string): void {
    const queued = this.queued;
    this.queued = [];
    for (const pending of queued)
      pending.resolve({ kind: 'unsent', reason: `No connection established: ${reason}` });
    const written = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const pending of written) pending.resolve({ kind: 'ambiguous', reason });
  }

  private expire(nowMs: number): void {
    if (this.queued.length > 0) {
      const kept: PendingForward[] = [];
      for (const pending of this.queued) {
        if (pending.deadlineMs > nowMs) kept.push(pending);
        else pending.resolve({ kind: 'unsent', reason: 'No connection established in time' });
      }
      this.queued = kept;
    }
    for (const pending of this.inFlight.values()) {
      if (pending.deadlineMs > nowMs) continue;
      this.inFlight.delete(pending.id);
      pending.resolve({ kind: 'ambiguous', reason: 'DEADLINE_EXCEEDED: no answer from the leader in time' });
    }
  }
}

const settle = (answer: unknown[]): ForwardResult => {
  if (answer[1] === null) {
    const reason = typeof answer[3] === 'string' ? answer[3] : 'refused';
    return answer[2] === 'unsent' ? { kind: 'unsent', reason } : { kind: 'ambiguous', reason };
  }
  try {
    return { kind: 'outcome', outcome: checkForwardOutcome(answer[1]) };
  } catch (error) {
    return { kind: 'ambiguous', reason: (error as Error).message };
  }
};

/** The Forwarder nodes use: one stream per peer. */
export class StreamForwarder implements Forwarder {
  private readonly streams = new Map<NodeId, PeerForwardStream>();
  private readonly options: Required<ForwardStreamOptions>;
  private closed = false;

  constructor(options: ForwardStreamOptions) {
    this.options = {
      clusterSecret: options.clusterSecret,
      tls: options.tls,
      messageBytesMax: options.messageBytesMax ?? PEER_MESSAGE_BYTES_MAX,
      batchBytesTarget: options.batchBytesTarget ?? PEER_BATCH_BYTES_TARGET,
      inFlightMax: options.inFlightMax ?? 8_192,
      connectTimeoutMs: options.connectTimeoutMs ?? 2_000,
      reconnectBackoffMs: options.reconnectBackoffMs ?? { initial: 50, max: 1_000 },
    };
  }

  /** Peer gRPC addresses; streams of peers that left or moved are closed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closed) return;
    for (const [peer, stream] of this.streams) {
      if (peers.get(peer) === stream.address) continue;
      stream.close();
      this.streams.delete(peer);
    }
    for (const [peer, address] of peers) {
      if (!this.streams.has(peer)) this.streams.set(peer, new PeerForwardStream(address, this.options));
    }
  }

  propose(peer: NodeId, group: GroupId, data: Uint8Array, timeoutMs: number): Promise<ForwardResult> {
    const stream = this.streams.get(peer);
    if (stream === undefined || this.closed) {
      return Promise.resolve({ kind: 'unsent', reason: `no address for ${peer}` });
    }
    return stream.propose(group, data, timeoutMs);
  }

  close(): void {
    this.closed = true;
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
  }
}
