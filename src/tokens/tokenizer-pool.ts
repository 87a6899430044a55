// Counts tokens off the event loop. js-tiktoken inline costs ~200 µs per chat message on the event
// loop and would cap the node near 4,000 appends/s; here a few worker_threads count with
// gpt-tokenizer (the same o200k/cl100k ranks, several times faster), each loading its encoding once.
//
// Batching: calls only enqueue their texts; once per event-loop turn (setImmediate) the queue is cut
// into batches for the least busy workers, at most `inflightBatchesPerWorker` each. While workers
// are busy, texts pile up and leave in bigger batches: one postMessage carries many parts, the way
// group commit amortises fsyncs.
//
// No request can hold the workers: a text longer than `segmentLength` is cut into segments
// (segments.ts) that wait in their own lane, and the two lanes take turns, so a short text waits
// behind at most one batch of segments, never behind a whole 1 MiB message. Each text's BPE work is
// linear in its length (long-runs.ts), and each batch has a time budget: a worker that overruns it
// is replaced, the texts it had already counted keep their counts, the one it was counting gets the
// fallback estimate (chars4: a quarter of its code points, rounded up) and the rest go back to the
// head of the queue. A text whose counting throws gets the fallback too.
//
// Failure: a worker that dies is handled the same way (it may have died of the text it was
// counting) and is replaced. Every queue has a bound; past it callers get 503 overloaded, never
// unbounded memory.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { ServiceError } from '../api/errors.js';
import type { SupportedEncoding } from './estimator-spec.js';
import { chars4Count } from './chars4.js';
import { FifoQueue } from './fifo-queue.js';
import { segmentText } from './segments.js';
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
  /** Texts longer than this many UTF-16 units are counted in segments of about this length. */
  readonly segmentLength?: number;
  /** How long a worker may take over one batch before it is replaced. */
  readonly batchTimeoutMs?: number;
  /** Batches a worker may hold at once; 2 keeps it busy while its last answer travels back. */
  readonly inflightBatchesPerWorker?: number;
  /** How long start() waits for every worker to load its encoding. */
  readonly startTimeoutMs?: number;
  /** First delay before restarting a worker that failed to start; doubles up to 5 s. */
  readonly restartDelayMs?: number;
  /** Told about every unexpected worker exit (for logs and metrics). */
  readonly onWorkerExit?: (event: { readonly workerIndex: number; readonly error: Error }) => void;
  /** Told about every text counted by the fallback estimate instead of the encoding. */
  readonly onFallback?: (event: FallbackEvent) => void;
  /** Fault injection for tests: a text equal to this makes a worker spin until it is replaced. */
  readonly stallMarker?: string;
}

export interface FallbackEvent {
  /** "overrun": its batch exceeded the time budget; "crash": its worker died; "error": counting threw. */
  readonly reason: 'overrun' | 'crash' | 'error';
  /** The text's length in UTF-16 units. */
  readonly length: number;
}

export interface TokenizerPoolStats {
  readonly workers: number;
  readonly readyWorkers: number;
  readonly queuedParts: number;
  readonly inflightBatches: number;
  readonly restarts: number;
  readonly fallbacks: number;
}

interface PendingCall {
  readonly counts: number[];
  remaining: number;
  settled: boolean;
  readonly resolve: (counts: number[]) => void;
  readonly reject: (error: Error) => void;
}

/** A whole text, or one segment of a long one (its count adds to the same part's). */
interface QueuedText {
  readonly call: PendingCall;
  readonly index: number;
  readonly text: string;
  readonly lane: Lane;
}

/** Whole texts and segments of long texts wait apart and take turns (see the opening comment). */
type Lane = 'whole' | 'segment';

interface InflightBatch {
  readonly items: readonly QueuedText[];
  /** Shared with the worker: [texts done, count of text 0, count of text 1, ...]. */
  readonly progress: Int32Array;
}

interface WorkerSlot {
  readonly index: number;
  readonly worker: Worker;
  ready: boolean;
  /** Set when the pool terminates the worker for overrunning its budget (not a crash). */
  retired: boolean;
  lastError: Error | undefined;
  /** In send order: the worker counts them one after another, the first one now. */
  readonly inflight: Map<number, InflightBatch>;
  /** Fires when the batch the worker is counting overruns the budget. */
  watchdog: NodeJS.Timeout | undefined;
  readonly started: Promise<void>;
}

const restartDelayMsMax = 5000;

const overloaded = (message: string): ServiceError =>
  new ServiceError('overloaded', message, { retryAfterSeconds: 1 });

/** gpt-tokenizer's CommonJS build for an encoding: what the worker's require() loads. */
const encodingModulePath = (encoding: SupportedEncoding): string =>
  createRequire(import.meta.url).resolve(`gpt-tokenizer/encoding/${encoding}`);

export class TokenizerPool {
  private readonly options: Required<
    Omit<TokenizerPoolOptions, 'onWorkerExit' | 'onFallback' | 'stallMarker'>
  > &
    Pick<TokenizerPoolOptions, 'onWorkerExit' | 'onFallback'>;
  private readonly workerData: WorkerData;
  private readonly slots: WorkerSlot[] = [];
  private readonly lanes: Record<Lane, FifoQueue<QueuedText>> = {
    whole: new FifoQueue(),
    segment: new FifoQueue(),
  };
  /** The lane the next batch comes from when both have texts waiting. */
  private nextLane: Lane = 'whole';
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly startFailures: number[] = [];
  private dispatchScheduled: NodeJS.Immediate | undefined;
  private nextBatchId = 1;
  private restarts = 0;
  private fallbacks = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(options: TokenizerPoolOptions) {
    this.options = {
      batchPartsMax: 512,
      batchCharsMax: 65_536,
      segmentLength: 32_768,
      batchTimeoutMs: 2_000,
      inflightBatchesPerWorker: 2,
      startTimeoutMs: 60_000,
      restartDelayMs: 100,
      ...options,
    };
    this.workerData = {
      modulePath: encodingModulePath(options.encoding),
      corePath: createRequire(import.meta.url).resolve('gpt-tokenizer/BytePairEncodingCore'),
      ...(options.stallMarker === undefined ? {} : { stallMarker: options.stallMarker }),
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
    const pieces = texts.map((text) => segmentText(text, this.options.segmentLength));
    const queued = pieces.reduce((sum, segments) => sum + segments.length, 0);
    if (this.queuedTexts() + queued > this.options.queuePartsMax) {
      return Promise.reject(overloaded('token counting is saturated; retry shortly'));
    }
    if (this.unavailable()) {
      return Promise.reject(overloaded('token counting is unavailable: its workers are restarting'));
    }
    return new Promise<number[]>((resolve, reject) => {
      const call: PendingCall = {
        counts: new Array<number>(texts.length).fill(0),
        remaining: queued,
        settled: false,
        resolve,
        reject,
      };
      pieces.forEach((segments, index) => {
        const lane: Lane = segments.length === 1 ? 'whole' : 'segment';
        for (const text of segments) this.lanes[lane].push({ call, index, text, lane });
      });
      this.scheduleDispatch();
    });
  }

  stats(): TokenizerPoolStats {
    let inflightBatches = 0;
    for (const slot of this.slots) inflightBatches += slot.inflight.size;
    return {
      workers: this.slots.length,
      readyWorkers: this.slots.filter((slot) => slot.ready).length,
      queuedParts: this.queuedTexts(),
      inflightBatches,
      restarts: this.restarts,
      fallbacks: this.fallbacks,
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
    this.failQueued(error);
    for (const slot of this.slots) {
      clearTimeout(slot.watchdog);
      for (const batch of slot.inflight.values()) for (const item of batch.items) failCall(item.call, error);
      slot.inflight.clear();
    }
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
      retired: false,
      lastError: undefined,
      inflight: new Map(),
      watchdog: undefined,
      started,
    };
    worker.on('message', (reply: WorkerReply) => {
      if (reply.type === 'ready') {
        slot.ready = true;
        this.startFailures[index] = 0;
        markReady();
        this.dispatch();
      } else {
        this.onBatchDone(slot, reply.id);
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
    // A worker the pool retired for overrunning was serving: restart it at once, like a crash.
    const wasReady = slot.ready || slot.retired;
    slot.ready = false;
    clearTimeout(slot.watchdog);
    const reason = slot.lastError === undefined ? `code ${code}` : slot.lastError.message;
    const error = new ServiceError('internal', `tokenizer worker ${slot.index} exited (${reason})`, {
      cause: slot.lastError,
    });
    this.salvageInflight(slot, 'crash');
    this.restarts++;
    this.options.onWorkerExit?.({ workerIndex: slot.index, error });
    if (!wasReady) this.startFailures[slot.index] = (this.startFailures[slot.index] ?? 0) + 1;
    // Nothing can count right now: fail fast rather than let queued callers wait on a restart loop.
    if (this.unavailable()) {
      this.failQueued(overloaded('token counting is unavailable: its workers are restarting'));
    }
    this.scheduleRestart(slot.index, wasReady ? 0 : this.restartDelay(slot.index));
    this.dispatch();
  }

  /** The batch a worker is counting took longer than the budget: keep what it counted, replace it. */
  private onOverrun(slot: WorkerSlot): void {
    if (this.closed || !slot.ready || slot.inflight.size === 0) return;
    slot.ready = false;
    slot.retired = true;
    slot.lastError = new Error(`a batch overran its ${this.options.batchTimeoutMs} ms budget`);
    this.salvageInflight(slot, 'overrun');
    void slot.worker.terminate();
    this.dispatch();
  }

  /**
   * Takes a failed or retired worker's batches back: texts it finished keep their counts, the one it
   * was counting (it may be the cause) gets the fallback estimate, the others go back to the head of
   * their lanes in order.
   */
  private salvageInflight(slot: WorkerSlot, reason: 'overrun' | 'crash'): void {
    clearTimeout(slot.watchdog);
    const batches = [...slot.inflight.values()];
    slot.inflight.clear();
    const requeue: QueuedText[] = [];
    batches.forEach((batch, position) => {
      const done = position === 0 ? Atomics.load(batch.progress, 0) : 0;
      batch.items.forEach((item, index) => {
        if (index < done) this.settleCounted(item, batch.progress[index + 1] ?? -1);
        else if (position === 0 && index === done) this.settleByFallback(item, reason);
        else requeue.push(item);
      });
    });
    for (let index = requeue.length - 1; index >= 0; index--) {
      const item = requeue[index] as QueuedText;
      if (!item.call.settled) this.lanes[item.lane].unshift(item);
    }
  }
  private restartDelay(index: number): number {
    const failures = this.startFailures[index] ?? 1;
    return Math.min(restartDelayMsMax, this.options.restartDelayMs * 2 ** Math.max(0, failures - 1));
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

  private onBatchDone(slot: WorkerSlot, batchId: number): void {
    const batch = slot.inflight.get(batchId);
    if (batch === undefined) return;
    slot.inflight.delete(batchId);
    // The worker starts its next batch now: that one gets a whole budget.
    if (slot.inflight.size > 0) slot.watchdog?.refresh();
    else {
      clearTimeout(slot.watchdog);
      slot.watchdog = undefined;
      slot.worker.unref();
    }
    batch.items.forEach((item, index) => this.settleCounted(item, batch.progress[index + 1] ?? -1));
    this.dispatch();
  }

  private settleCounted(item: QueuedText, count: number): void {
    if (count < 0) this.settleByFallback(item, 'error');
    else settleText(item, count);
  }

  private settleByFallback(item: QueuedText, reason: FallbackEvent['reason']): void {
    if (item.call.settled) return;
    this.fallbacks++;
    this.options.onFallback?.({ reason, length: item.text.length });
    settleText(item, chars4Count(item.text));
  }

  private queuedTexts(): number {
    return this.lanes.whole.length + this.lanes.segment.length;
  }

  private failQueued(error: Error): void {
    for (const lane of Object.values(this.lanes)) for (const item of lane.drain()) failCall(item.call, error);
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled !== undefined) return;
    this.dispatchScheduled = setImmediate(() => {
      this.dispatchScheduled = undefined;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queuedTexts() > 0) {
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

  /** The lane whose turn it is, or the one with texts waiting. */
  private takeLane(): FifoQueue<QueuedText> {
    const other: Lane = this.nextLane === 'whole' ? 'segment' : 'whole';
    const lane = this.lanes[this.nextLane].length > 0 ? this.nextLane : other;
    this.nextLane = lane === 'whole' ? 'segment' : 'whole';
    return this.lanes[lane];
  }

  private takeBatch(): QueuedText[] {
    const lane = this.takeLane();
    const batch: QueuedText[] = [];
    let chars = 0;
    while (batch.length < this.options.batchPartsMax) {
      const next = lane.peek();
      if (next === undefined) break;
      if (batch.length > 0 && chars + next.text.length > this.options.batchCharsMax) break;
      lane.shift();
      if (next.call.settled) continue; // its call already failed elsewhere
      batch.push(next);
      chars += next.text.length;
    }
    return batch;
  }

  private sendBatch(slot: WorkerSlot, items: readonly QueuedText[]): void {
    const id = this.nextBatchId++;
    const progress = new Int32Array(new SharedArrayBuffer(4 * (items.length + 1)));
    slot.inflight.set(id, { items, progress });
    if (slot.inflight.size === 1) {
      slot.worker.ref();
      slot.watchdog = setTimeout(() => this.onOverrun(slot), this.options.batchTimeoutMs);
      slot.watchdog.unref();
    }
    const message: WorkerBatch = { id, texts: items.map((item) => item.text), progress };
    slot.worker.postMessage(message);
  }
}

const settleText = (item: QueuedText, count: number): void => {
  const call = item.call;
  if (call.settled) return;
  call.counts[item.index] = (call.counts[item.index] ?? 0) + count;
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
