// Counts tokens off the event loop. js-tiktoken inline costs ~200 µs per chat message on the event
// loop and would cap the node near 4,000 appends/s; here a few worker_threads count with
// gpt-tokenizer (the same o200k/cl100k ranks, several times faster), each loading its encoding once.
//
// Batching: calls only enqueue their texts; once per event-loop turn (setImmediate) the queue is cut
// into batches for the least busy workers, at most `inflightBatchesPerWorker` each. While workers
// are busy, texts pile up and leave in bigger batches: one postMessage carries many parts, the way
// group commit amortises fsyncs.
//
// Failure: a worker that dies fails exactly the calls whose texts it held (they may have caused it)
// and is replaced; queued texts wait for the replacement or go to other workers. Every queue has a
// bound; past it callers get 503 overloaded, never unbounded memory.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ServiceError } from '../errors.js';
import type { SupportedEncoding } from './estimator-spec.js';
import { FifoQueue } from './fifo-queue.js';
import { workerSource, type WorkerBatch, type WorkerData, type WorkerReply } from './worker-source.js';

export interface TokenizerPoolOptions {
  readonly encoding: SupportedEncoding;
  readonly workers: number;
  /** Texts waiting for a worker, across all callers, before count() refuses with overloaded. */
  readonly queuePartsMax: number;
  /** Texts per batch. */
  readonly batchPartsMax?: number;
  /** UTF-16 units per batch (at least one text is always sent), to bound one batch's latency. */
  readonly batchCharsMax?: number;
  /** Batches a worker may hold at once; 2 keeps it busy while its last answer travels back. */
  readonly inflightBatchesPerWorker?: number;
  /** How long start() waits for every worker to load its encoding. */
  readonly startTimeoutMs?: number;
  /** First delay before restarting a worker that failed to start; doubles up to 5 s. */
  readonly restartDelayMs?: number;
  /** Told about every unexpected worker exit (for logs and metrics). */
  readonly onWorkerExit?: (event: { readonly workerIndex: number; readonly error: Error }) => void;
}

export interface TokenizerPoolStats {
  readonly workers: number;
  readonly readyWorkers: number;
  readonly queuedParts: number;
  readonly inflightBatches: number;
  readonly restarts: number;
}

interface PendingCall {
  readonly counts: number[];
  remaining: number;
  settled: boolean;
  readonly resolve: (counts: number[]) => void;
  readonly reject: (error: Error) => void;
}

interface QueuedText {
  readonly call: PendingCall;
  readonly index: number;
  readonly text: string;
}

interface WorkerSlot {
  readonly index: number;
  readonly worker: Worker;
  ready: boolean;
  lastError: Error | undefined;
  readonly inflight: Map<number, readonly QueuedText[]>;
  readonly started: Promise<void>;
}

const restartDelayMaxMs = 5000;

const overloaded = (message: string): ServiceError =>
  new ServiceError('overloaded', message, { retryAfterSeconds: 1 });

/** gpt-tokenizer's CommonJS build for an encoding: what the worker's require() loads. */
const encodingModulePath = (encoding: SupportedEncoding): string =>
  createRequire(import.meta.url).resolve(`gpt-tokenizer/encoding/${encoding}`);

export class TokenizerPool {
  private readonly options: Required<Omit<TokenizerPoolOptions, 'onWorkerExit'>> &
    Pick<TokenizerPoolOptions, 'onWorkerExit'>;
  private readonly workerData: WorkerData;
  private readonly slots: WorkerSlot[] = [];
  private readonly queue = new FifoQueue<QueuedText>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly startFailures: number[] = [];
  private dispatchScheduled: NodeJS.Immediate | undefined;
  private nextBatchId = 1;
  private restarts = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(options: TokenizerPoolOptions) {
    this.options = {
      batchPartsMax: 512,
      batchCharsMax: 1_000_000,
      inflightBatchesPerWorker: 2,
      startTimeoutMs: 60_000,
      restartDelayMs: 100,
      ...options,
    };
    this.workerData = {
      modulePath: encodingModulePath(options.encoding),
      corePath: createRequire(import.meta.url).resolve('gpt-tokenizer/BytePairEncodingCore'),
    };
  }

  /** Starts `workers` workers and resolves once every one has loaded its encoding. */
  static async start(options: TokenizerPoolOptions): Promise<TokenizerPool> {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new RangeError(`tokenizer workers must be a positive integer, got ${options.workers}`);
    }
    const pool = new TokenizerPool(options);
    for (let index = 0; index < options.workers; index++) pool.slots.push(pool.spawn(index));
    try {
      await withTimeout(
        Promise.all(pool.slots.map((slot) => slot.started)),
        pool.options.startTimeoutMs,
        `tokenizer workers did not load ${options.encoding} within ${pool.options.startTimeoutMs} ms`,
      );
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /** One token count per text, in order. */
  count(texts: readonly string[]): Promise<number[]> {
    if (this.closed) return Promise.reject(overloaded('token counting is closed: the node is shutting down'));
    if (texts.length === 0) return Promise.resolve([]);
    if (this.queue.length + texts.length > this.options.queuePartsMax) {
      return Promise.reject(overloaded('token counting is saturated; retry shortly'));
    }
    if (this.unavailable()) {
      return Promise.reject(overloaded('token counting is unavailable: its workers are restarting'));
    }
    return new Promise<number[]>((resolve, reject) => {
      const call: PendingCall = {
        counts: new Array<number>(texts.length).fill(0),
        remaining: texts.length,
        settled: false,
        resolve,
        reject,
      };
      texts.forEach((text, index) => this.queue.push({ call, index, text }));
      this.scheduleDispatch();
    });
  }

  stats(): TokenizerPoolStats {
    let inflightBatches = 0;
    for (const slot of this.slots) inflightBatches += slot.inflight.size;
    return {
      workers: this.slots.length,
      readyWorkers: this.slots.filter((slot) => slot.ready).length,
      queuedParts: this.queue.length,
      inflightBatches,
      restarts: this.restarts,
    };
  }

  /**
   * Fault injection for tests and chaos drills: kills worker `index` at once, exactly as a crash
   * would (its batches fail, it is restarted). Resolves once it has stopped.
   */
  async crashWorker(index: number): Promise<void> {
    const slot = this.slots[index];
    if (slot === undefined) throw new RangeError(`no tokenizer worker ${index}`);
    await slot.worker.terminate();
  }

  /** Fails every queued and in-flight call, stops the workers. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    if (this.dispatchScheduled !== undefined) clearImmediate(this.dispatchScheduled);
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    const error = overloaded('token counting is closed: the node is shutting down');
    for (const item of this.queue.drain()) failCall(item.call, error);
    for (const slot of this.slots) this.failInflight(slot, error);
    this.closing = Promise.all(this.slots.map((slot) => slot.worker.terminate())).then(() => undefined);
    return this.closing;
  }

  private spawn(index: number): WorkerSlot {
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: this.workerData,
      name: `fastpaca-tokenizer-${index}`,
    });
    // An idle worker must not keep the process alive; a busy one does (see sendBatch).
    worker.unref();
    let markReady: () => void = () => {};
    let markFailed: (error: Error) => void = () => {};
    const started = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    // start() and restarts both observe `started`; this keeps an early failure from being unhandled.
    started.catch(() => {});
    const slot: WorkerSlot = {
      index,
      worker,
      ready: false,
      lastError: undefined,
      inflight: new Map(),
      started,
    };
    worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') {
        slot.ready = true;
        this.startFailures[index] = 0;
        markReady();
        this.dispatch();
      } else {
        this.onCounts(slot, reply.id, reply.counts);
      }
    });
    worker.on('error', (error) => {
      slot.lastError = error;
    });
    worker.on('exit', (code) => {
      markFailed(
        slot.lastError ?? new Error(`tokenizer worker ${index} exited with code ${code} while starting`),
      );
      this.onExit(slot, code);
    });
    return slot;
  }

  private onExit(slot: WorkerSlot, code: number): void {
    if (this.closed) return;
    const wasReady = slot.ready;
    slot.ready = false;
    const reason = slot.lastError === undefined ? `code ${code}` : slot.lastError.message;
    const error = new ServiceError(
      'internal',
      `token counting failed: tokenizer worker ${slot.index} exited (${reason})`,
      {
        cause: slot.lastError,
      },
    );
    this.failInflight(slot, error);
    this.restarts++;
    this.options.onWorkerExit?.({ workerIndex: slot.index, error });
    if (!wasReady) this.startFailures[slot.index] = (this.startFailures[slot.index] ?? 0) + 1;
    // Nothing can count right now: fail fast rather than let queued callers wait on a restart loop.
    if (this.unavailable()) {
      const unavailable = overloaded('token counting is unavailable: its workers are restarting');
      for (const item of this.queue.drain()) failCall(item.call, unavailable);
    }
    this.scheduleRestart(slot.index, wasReady ? 0 : this.restartDelay(slot.index));
  }

  private restartDelay(index: number): number {
    const failures = this.startFailures[index] ?? 1;
    return Math.min(restartDelayMaxMs, this.options.restartDelayMs * 2 ** Math.max(0, failures - 1));
  }

  private scheduleRestart(index: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.closed) this.slots[index] = this.spawn(index);
    }, delayMs);
    timer.unref();
    this.restartTimers.add(timer);
  }

  /** No worker can take work, and the last attempt to start one failed. */
  private unavailable(): boolean {
    return !this.slots.some((slot) => slot.ready) && this.startFailures.some((failures) => failures > 0);
  }

  private failInflight(slot: WorkerSlot, error: Error): void {
    for (const batch of slot.inflight.values()) for (const item of batch) failCall(item.call, error);
    slot.inflight.clear();
  }

  private onCounts(slot: WorkerSlot, batchId: number, counts: Int32Array): void {
    const batch = slot.inflight.get(batchId);
    if (batch === undefined) return;
    slot.inflight.delete(batchId);
    if (slot.inflight.size === 0) slot.worker.unref();
    batch.forEach((item, position) => {
      const count = counts[position] ?? -1;
      if (count < 0) {
        failCall(item.call, new ServiceError('internal', 'token counting failed for a message part'));
        return;
      }
      settleText(item, count);
    });
    this.dispatch();
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled !== undefined) return;
    this.dispatchScheduled = setImmediate(() => {
      this.dispatchScheduled = undefined;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.leastBusyReadySlot();
      if (slot === undefined) return;
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.sendBatch(slot, batch);
    }
  }

  private leastBusyReadySlot(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (const slot of this.slots) {
      if (!slot.ready || slot.inflight.size >= this.options.inflightBatchesPerWorker) continue;
      if (best === undefined || slot.inflight.size < best.inflight.size) best = slot;
    }
    return best;
  }

  private takeBatch(): QueuedText[] {
    const batch: QueuedText[] = [];
    let chars = 0;
    while (batch.length < this.options.batchPartsMax) {
      const next = this.queue.peek();
      if (next === undefined) break;
      if (batch.length > 0 && chars + next.text.length > this.options.batchCharsMax) break;
      this.queue.shift();
      if (next.call.settled) continue; // its call already failed elsewhere
      batch.push(next);
      chars += next.text.length;
    }
    return batch;
  }

  private sendBatch(slot: WorkerSlot, batch: readonly QueuedText[]): void {
    const id = this.nextBatchId++;
    slot.inflight.set(id, batch);
    if (slot.inflight.size === 1) slot.worker.ref();
    const message: WorkerBatch = { id, texts: batch.map((item) => item.text) };
    slot.worker.postMessage(message);
  }
}

const settleText = (item: QueuedText, count: number): void => {
  const call = item.call;
  if (call.settled) return;
  call.counts[item.index] = count;
  call.remaining--;
  if (call.remaining === 0) {
    call.settled = true;
    call.resolve(call.counts);
  }
};

const failCall = (call: PendingCall, error: Error): void => {
  if (call.settled) return;
  call.settled = true;
  call.reject(error);
};

const withTimeout = async <T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
};
