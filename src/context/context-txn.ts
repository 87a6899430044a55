// One command's view of one context while it is applied: the records it starts from, the records
// it replaces, the events it produces, and typed access to the context's other keys. Nothing is
// visible outside until the state machine commits the underlying ApplyTx.

import type { ApplyTx, GroupReader } from './group-access.js';
import type { ContextEvent, StoredEvent } from './events.js';
import type { ContextKeys } from './keys.js';
import {
  decodeContextRecord,
  decodeIdempotencyRecord,
  decodeMessageRecord,
  decodeSummaryRecord,
  decodeWindowRecord,
  encodeContextRecord,
  encodeEventRecord,
  encodeIdempotencyRecord,
  encodeMessageRecord,
  encodeSummaryRecord,
  encodeWindowRecord,
} from './records.js';
import type {
  ContextRecord,
  IdempotencyRecord,
  MessageRecord,
  SummaryRecord,
  WindowRecord,
} from './records.js';
import type { WindowStore } from './window-policy.js';

export interface ContextRecords {
  readonly context: ContextRecord;
  readonly window: WindowRecord;
}

/** Both records of a context, or undefined if it was never created. */
export const loadRecords = async (
  reader: GroupReader,
  keys: ContextKeys,
): Promise<ContextRecords | undefined> => {
  const [context, window] = await Promise.all([reader.get(keys.context()), reader.get(keys.window())]);
  if (context === undefined) return undefined;
  if (window === undefined) throw new Error(`context ${keys.contextId} has no window record`);
  return { context: decodeContextRecord(context), window: decodeWindowRecord(window) };
};

/** An event the command produced; `ordinal` for one stored under its own key. */
export interface TxnEvent {
  readonly event: ContextEvent;
  readonly ordinal?: number;
}

export class ContextTxn implements WindowStore {
  readonly events: TxnEvent[] = [];
  private context: ContextRecord | undefined;
  private window: WindowRecord | undefined;
  private contextChanged = false;
  private windowChanged = false;
  /** The message being appended, served to the policy without a decode. */
  private fresh: { readonly seq: number; readonly record: MessageRecord } | undefined;

  constructor(
    private readonly tx: ApplyTx,
    readonly keys: ContextKeys,
    readonly now: string,
    start: ContextRecords | undefined,
  ) {
    this.context = start?.context;
    this.window = start?.window;
  }

  get contextId(): string {
    return this.keys.contextId;
  }

  /** The records as they stand in this command (undefined: no such context). */
  records(): ContextRecords | undefined {
    return this.context === undefined || this.window === undefined
      ? undefined
      : { context: this.context, window: this.window };
  }

  setContext(context: ContextRecord): void {
    this.context = context;
    this.contextChanged = true;
  }

  /** `window` must be a private copy (cloneWindow): it becomes the cached state as is. */
  setWindow(window: WindowRecord): void {
    this.window = window;
    this.windowChanged = true;
  }

  /** Stores a non-message event under the next ordinal of the context. */
  storeEvent(event: StoredEvent): void {
    const context = this.requireContext();
    this.tx.put(this.keys.event(event.version, context.eventCount), encodeEventRecord(event));
    this.setContext({ ...context, eventCount: context.eventCount + 1 });
    this.events.push({ event, ordinal: context.eventCount });
  }

  /** Announces an event stored inside another record (a message's). */
  emit(event: ContextEvent): void {
    this.events.push({ event });
  }

  /** Writes the changed records; returns the state to cache, if anything changed. */
  finish(): ContextRecords | undefined {
    if (this.contextChanged) this.tx.put(this.keys.context(), encodeContextRecord(this.requireContext()));
    if (this.windowChanged) this.tx.put(this.keys.window(), encodeWindowRecord(this.requireWindow()));
    return this.contextChanged || this.windowChanged ? this.records() : undefined;
  }

  // --- messages and idempotency keys

  stageFreshMessage(seq: number, record: MessageRecord): void {
    this.fresh = { seq, record };
  }

  putMessage(seq: number, record: MessageRecord): void {
    this.tx.put(this.keys.message(seq), encodeMessageRecord(record));
  }

  delMessage(seq: number): void {
    this.tx.del(this.keys.message(seq));
  }

  /** Remembers the idempotency key of a message being trimmed until the key expires. */
  putTrimmedKey(seq: number, idempotencyKey: string): void {
    this.tx.put(this.keys.trimmedKey(seq), Buffer.from(idempotencyKey, 'utf8'));
  }

  async trimmedKey(seq: number): Promise<string | undefined> {
    const data = await this.tx.get(this.keys.trimmedKey(seq));
    return data === undefined
      ? undefined
      : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  }

  delTrimmedKey(seq: number): void {
    this.tx.del(this.keys.trimmedKey(seq));
  }

  async findMessage(seq: number): Promise<MessageRecord | undefined> {
    if (this.fresh?.seq === seq) return this.fresh.record;
    const data = await this.tx.get(this.keys.message(seq));
    return data === undefined ? undefined : decodeMessageRecord(data);
  }

  async message(seq: number): Promise<MessageRecord> {
    const record = await this.findMessage(seq);
    if (record === undefined) throw new Error(`context ${this.contextId} lacks message ${seq}`);
    return record;
  }

  async idempotent(key: string): Promise<IdempotencyRecord | undefined> {
    const data = await this.tx.get(this.keys.idempotency(key));
    return data === undefined ? undefined : decodeIdempotencyRecord(data);
  }

  putIdempotent(key: string, record: IdempotencyRecord): void {
    this.tx.put(this.keys.idempotency(key), encodeIdempotencyRecord(record));
  }

  forgetIdempotent(key: string): void {
    this.tx.del(this.keys.idempotency(key));
  }

  // --- summary messages (WindowStore)

  async summary(generation: number, index: number): Promise<SummaryRecord> {
    const data = await this.tx.get(this.keys.summary(generation, index));
    if (data === undefined) throw new Error(`context ${this.contextId} lacks summary ${generation}/${index}`);
    return decodeSummaryRecord(data);
  }

  putSummary(generation: number, index: number, record: SummaryRecord): void {
    this.tx.put(this.keys.summary(generation, index), encodeSummaryRecord(record));
  }

  delSummary(generation: number, index: number): void {
    this.tx.del(this.keys.summary(generation, index));
  }

  private requireContext(): ContextRecord {
    if (this.context === undefined) throw new Error(`context ${this.contextId} does not exist`);
    return this.context;
  }

  private requireWindow(): WindowRecord {
    if (this.window === undefined) throw new Error(`context ${this.contextId} has no window`);
    return this.window;
  }
}
