// The sending side of a snapshot transfer: one client-streaming call on its own connection (so a
// large snapshot does not queue behind, or delay, the peer's Raft stream), chunks written in order
// with the call's flow control, and the receiver's boolean answer returned.

import { Client, status } from '@grpc/grpc-js';
import type { ClientWritableStream } from '@grpc/grpc-js';
import type { SnapshotChunk } from '../api.js';
import type { NodeId } from '../core/types.js';
import { secretMetadata } from '../../net/auth.js';
import { decodeSnapshotAnswer, encodeSnapshotChunk } from './codec.js';
import { clientOptions, deserializeBytes, peerChannelCredentials, serializeBytes } from '../../net/grpc.js';
import { SNAPSHOT_PATH } from './grpc-service.js';
import type { ChannelTuning, PeerTls } from '../../net/grpc.js';
import type { LinkError } from './peer-link.js';

export interface SnapshotSendOptions extends ChannelTuning {
  readonly nodeId: NodeId;
  readonly address: string;
  readonly clusterSecret: string | undefined;
  readonly tls?: PeerTls | undefined;
  /** Deadline of the whole transfer, install on the receiver included. */
  readonly timeoutMs: number;
  /** Aborted when the transport stops: the call is cancelled. */
  readonly signal: AbortSignal;
}

export type SnapshotSendResult =
  { readonly ok: true; readonly accepted: boolean } | { readonly ok: false; readonly error: LinkError };

/** grpc-js's ServiceError, or our own for an answer that could not be read. */
type CallError = Error & LinkError;

const isCallError = (error: unknown): error is CallError =>
  error instanceof Error && typeof (error as Partial<CallError>).code === 'number';

/**
 * Stream `chunks` to the peer. Transport failures come back as `{ ok: false }`; an error thrown by
 * the chunk source itself (the host's store) is rethrown after the call is cancelled.
 */
export const sendSnapshotOverGrpc = async (
  options: SnapshotSendOptions,
  chunks: AsyncIterable<SnapshotChunk>,
): Promise<SnapshotSendResult> => {
  const client = new Client(options.address, peerChannelCredentials(options.tls), clientOptions(options));
  const started = startCall(client, options);
  const cancel = (): void => started.call.cancel();
  options.signal.addEventListener('abort', cancel);
  try {
    if (options.signal.aborted) cancel();
    const failure = await writeChunks(started, options, chunks);
    if (failure !== undefined) return { ok: false, error: failure };
    started.call.end();
    return { ok: true, accepted: await started.answer };
  } catch (error) {
    if (!isCallError(error)) {
      cancel();
      throw error;
    }
    return { ok: false, error: { code: error.code, details: error.details } };
  } finally {
    options.signal.removeEventListener('abort', cancel);
    client.close();
  }
};

interface StartedCall {
  readonly call: ClientWritableStream<Uint8Array>;
  /** Rejects with a CallError. */
  readonly answer: Promise<boolean>;
  /** Whether the call already ended (answer or error) while chunks were still being written. */
  readonly settled: () => boolean;
  readonly whenSettled: Promise<void>;
}

const startCall = (client: Client, options: SnapshotSendOptions): StartedCall => {
  let call: ClientWritableStream<Uint8Array> | undefined;
  const answer = new Promise<boolean>((resolve, reject) => {
    call = client.makeClientStreamRequest<Uint8Array, Uint8Array>(
      SNAPSHOT_PATH,
      serializeBytes,
      deserializeBytes,
      secretMetadata(options.clusterSecret),
      { deadline: Date.now() + options.timeoutMs },
      (error, value) => {
        if (error !== null) reject(error);
        else if (value === undefined) reject(answerError('no answer'));
        else settleAnswer(value, resolve, reject);
      },
    );
  });
  let done = false;
  const whenSettled = answer.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  if (call === undefined) throw new Error('grpc-js did not start the snapshot call');
  return { call, answer, settled: () => done, whenSettled };
};

const answerError = (details: string): CallError =>
  Object.assign(new Error(details), { code: status.INTERNAL, details });

const settleAnswer = (
  value: Uint8Array,
  resolve: (accepted: boolean) => void,
  reject: (error: CallError) => void,
): void => {
  try {
    resolve(decodeSnapshotAnswer(value));
  } catch {
    reject(answerError('undecodable snapshot answer'));
  }
};

/** Returns a failure for a chunk too large to send; call errors surface through `answer`. */
const writeChunks = async (
  started: StartedCall,
  options: SnapshotSendOptions,
  chunks: AsyncIterable<SnapshotChunk>,
): Promise<LinkError | undefined> => {
  for await (const chunk of chunks) {
    // The receiver refused (or the call failed) early: stop reading the source.
    if (started.settled()) break;
    const bytes = encodeSnapshotChunk(options.nodeId, chunk);
    if (bytes.byteLength > options.frameBytesMax) {
      started.call.cancel();
      return { code: status.RESOURCE_EXHAUSTED, details: 'snapshot chunk larger than frameBytesMax' };
    }
    if (!started.call.write(bytes)) await Promise.race([drained(started.call), started.whenSettled]);
  }
  return undefined;
};

const drained = (call: ClientWritableStream<Uint8Array>): Promise<void> =>
  new Promise((resolve) => call.once('drain', () => resolve()));
