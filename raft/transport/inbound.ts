// The server side of the transport: authenticates each call, decodes frames and hands their
// batches to the host (which only enqueues), and reassembles snapshot transfers before handing
// them over and returning the host's answer to the sender.

import { status } from '@grpc/grpc-js';
import type {
  sendUnaryData,
  ServerDuplexStream,
  ServerReadableStream,
  StatusObject,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { TransportHandlers } from '../api.js';
import type { NodeId } from '../core/types.js';
import type { SecretCheck } from '../../net/auth.js';
import { CodecError, decodeFrame, decodeSnapshotChunk, encodeSnapshotAnswer } from './codec.js';
import { sendHello } from '../../net/hello-stream.js';
import { SnapshotAssembly } from './snapshot-assembly.js';
import type { CompleteSnapshot, SnapshotBudget } from './snapshot-assembly.js';
import type { TransportStats } from './transport-stats.js';

export interface InboundContext {
  readonly nodeId: NodeId;
  readonly checkSecret: SecretCheck;
  readonly handlers: TransportHandlers;
  readonly stats: TransportStats;
  readonly snapshotBudget: SnapshotBudget;
  /** An authenticated frame from `peer` arrived: it is up. */
  readonly onPeerAlive?: (peer: NodeId) => void;
}

/** The final status of a refused call. */
type Refusal = Pick<StatusObject, 'code' | 'details'>;

const refusal = (code: status, details: string): Refusal => ({ code, details });

const UNAUTHENTICATED = refusal(status.UNAUTHENTICATED, 'missing or wrong cluster secret');

export const createInboundService = (context: InboundContext): UntypedServiceImplementation => ({
  Stream: (call: ServerDuplexStream<Uint8Array, Uint8Array>) => handleStream(context, call),
  Snapshot: (call: ServerReadableStream<Uint8Array, Uint8Array>, callback: sendUnaryData<Uint8Array>) =>
    handleSnapshot(context, call, callback),
});

const handleStream = (context: InboundContext, call: ServerDuplexStream<Uint8Array, Uint8Array>): void => {
  if (!context.checkSecret(call.metadata)) {
    context.stats.callsUnauthenticated += 1;
    // grpc-js turns an 'error' on a server stream into the call's final status.
    call.emit('error', Object.assign(new Error(UNAUTHENTICATED.details), UNAUTHENTICATED));
    return;
  }
  call.on('data', (bytes: Uint8Array) => receiveFrame(context, bytes));
  call.on('end', () => call.end());
  sendHello(call);
};

const receiveFrame = (context: InboundContext, bytes: Uint8Array): void => {
  const { stats } = context;
  let frame;
  try {
    frame = decodeFrame(bytes);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    stats.framesRejected += 1;
    return;
  }
  // A frame for another node means the sender's address book is stale (an address now serves a
  // different node): stepping it here would feed one node's Raft state to another.
  if (frame.to !== context.nodeId) {
    stats.framesRejected += 1;
    return;
  }
  stats.framesReceived += 1;
  stats.messagesReceived += frame.batch.length;
  context.onPeerAlive?.(frame.from);
  if (frame.batch.length > 0) context.handlers.onMessages(frame.from, frame.batch);
};

const handleSnapshot = (
  context: InboundContext,
  call: ServerReadableStream<Uint8Array, Uint8Array>,
  callback: sendUnaryData<Uint8Array>,
): void => {
  if (!context.checkSecret(call.metadata)) {
    context.stats.callsUnauthenticated += 1;
    callback(UNAUTHENTICATED);
    return;
  }
  const assembly = new SnapshotAssembly(context.snapshotBudget);
  let finished = false;
  let installing = false;
  const finish = (refused: Refusal | null, accepted = false): void => {
    if (finished) return;
    finished = true;
    assembly.release();
    if (refused === null) callback(null, encodeSnapshotAnswer(accepted));
    else callback(refused);
  };
  const install = (snapshot: CompleteSnapshot): void => {
    installing = true;
    context.stats.snapshotsReceived += 1;
    context.handlers.onSnapshot(snapshot.from, snapshot.group, snapshot.message, snapshot.pairs).then(
      (accepted) => finish(null, accepted),
      (error: unknown) => finish(refusal(status.INTERNAL, `install failed: ${String(error)}`)),
    );
  };
  call.on('data', (bytes: Uint8Array) => {
    if (finished || installing) return;
    const outcome = receiveChunk(context, assembly, bytes);
    if (outcome.kind === 'refused') finish(outcome.refusal);
    else if (outcome.kind === 'complete') install(outcome.snapshot);
  });
  call.on('end', () => {
    if (!installing) finish(refusal(status.INVALID_ARGUMENT, 'snapshot ended before its last chunk'));
  });
  // While installing, the host holds the pairs: the budget is released when the install settles.
  call.on('cancelled', () => {
    if (!installing) finish(refusal(status.CANCELLED, 'cancelled'));
  });
};

type ChunkOutcome =
  | { readonly kind: 'more' }
  | { readonly kind: 'complete'; readonly snapshot: CompleteSnapshot }
  | { readonly kind: 'refused'; readonly refusal: Refusal };

const receiveChunk = (
  context: InboundContext,
  assembly: SnapshotAssembly,
  bytes: Uint8Array,
): ChunkOutcome => {
  let wire;
  try {
    wire = decodeSnapshotChunk(bytes);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    return { kind: 'refused', refusal: refusal(status.INVALID_ARGUMENT, error.message) };
  }
  if (wire.chunk.message.to !== context.nodeId) {
    return { kind: 'refused', refusal: refusal(status.INVALID_ARGUMENT, 'snapshot for another node') };
  }
  const outcome = assembly.add(wire.from, wire.chunk, bytes.byteLength);
  if (outcome.kind !== 'refused') return outcome;
  return outcome.reason === 'too_large'
    ? { kind: 'refused', refusal: refusal(status.RESOURCE_EXHAUSTED, 'snapshot exceeds snapshotBytesMax') }
    : { kind: 'refused', refusal: refusal(status.INVALID_ARGUMENT, 'snapshot chunk out of order') };
};
