// The fault suite's client workload: writers append to many contexts, each message with a unique id
// sent as its Idempotency-Key, retrying one append (same key) on 503/429/no answer, on the next node
// in turn, after Retry-After (capped); some appends carry `if_version` (read the version, then append
// on it; a 409 is a lost race, not an error). Readers read tail, window and context info on every
// node, including nodes that are cut off (so a stale read would show). Every request and its answer
// goes to the recorder. Every loop is bounded by the stop flag and every request by a timeout.

import type { Operation, Observation, Recorder } from './recorder.js';

export interface Target {
  readonly name: string;
  readonly base: string;
}

export interface WorkloadOptions {
  readonly contexts: readonly string[];
  /** Where writes and reads may go; called per request (e.g. to skip killed nodes). */
  readonly targets: () => readonly Target[];
  readonly writers: number;
  readonly readers: number;
  readonly recorder: Recorder;
  /** Fraction of appends sent with if_version. Default 0.2. */
  readonly ifVersionRatio?: number;
  readonly requestTimeoutMs?: number;
  /** Attempts per append before giving up on it (it may still have been applied). Default 50. */
  readonly attemptsMax?: number;
  /** Pause between one writer's appends. Default 0. */
  readonly writePauseMs?: number;
  readonly readPauseMs?: number;
  /** Text size of each message. Default ~40 bytes. */
  readonly payloadBytes?: number;
  /** Prefix of every message id (unique per run, so ids never repeat across workloads). */
  readonly keyPrefix?: string;
  /** Statuses a writer may see beside 200/201/409/503/429/0; anything else fails the workload. */
  readonly allowedStatuses?: readonly number[];
}

export interface RunningWorkload {
  /** Stops the loops and waits for them (bounded by one request timeout each). */
  stop(): Promise<WorkloadResult>;
  /** Acknowledged appends so far. */
  acked(): number;
  readonly unexpected: string[];
}

export interface WorkloadResult {
  readonly appendsAcked: number;
  readonly appendsAbandoned: number;
  readonly unexpected: readonly string[];
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly replayed: boolean;
  readonly retryAfter?: string;
  readonly error?: string;
}

export const request = async (
  base: string,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Answer> => {
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    const retryAfter = response.headers.get('retry-after');
    return {
      status: response.status,
      body: parsed,
      replayed: response.headers.get('idempotent-replayed') === 'true',
      ...(retryAfter === null ? {} : { retryAfter }),
    };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    return { status: 0, body: undefined, replayed: false, error: cause?.code ?? (error as Error).name };
  }
};

const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);

/** What an answer showed, per operation. */
const observe = (op: Operation, answer: Answer): Observation | undefined => {
  if (answer.status !== 200 && answer.status !== 201) return undefined;
  const body = (answer.body ?? {}) as Record<string, unknown>;
  if (op.kind === 'append') {
    const seq = num(body['seq']);
    const version = num(body['version']);
    return {
      ...(seq === undefined ? {} : { seq }),
      ...(version === undefined ? {} : { version }),
      replayed: answer.replayed,
    };
  }
  if (op.read === 'tail') {
    const messages = (body['messages'] ?? []) as { seq: number }[];
    return { seq: messages.at(-1)?.seq ?? 0 };
  }
  if (op.read === 'window') {
    const version = num(body['version']);
    return version === undefined ? undefined : { version };
  }
  const seq = num(body['last_seq']);
  const version = num(body['version']);
  return { ...(seq === undefined ? {} : { seq }), ...(version === undefined ? {} : { version }) };
};

export const startWorkload = (options: WorkloadOptions): RunningWorkload => {
  const timeoutMs = options.requestTimeoutMs ?? 5_000;
  const attemptsMax = options.attemptsMax ?? 50;
  const ifVersionRatio = options.ifVersionRatio ?? 0.2;
  const payload = 'x'.repeat(Math.max(1, options.payloadBytes ?? 40));
  const keyPrefix = options.keyPrefix ?? `r${Math.random().toString(36).slice(2, 8)}`;
  const allowed = new Set([0, 200, 201, 409, 429, 503, ...(options.allowedStatuses ?? [])]);
  const unexpected: string[] = [];
  let stop = false;
  let acked = 0;
  let abandoned = 0;
  let turn = 0;

  const pick = (): Target | undefined => {
    const targets = options.targets();
    turn += 1;
    return targets[turn % Math.max(1, targets.length)];
  };

  const send = async (
    target: Target,
    op: Operation,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<Answer> => {
    const done = options.recorder.begin(target.name, op);
    const headers: Record<string, string> = op.kind === 'append' ? { 'idempotency-key': op.key } : {};
    const answer = await request(target.base, method, path, body, headers, timeoutMs);
    const observed = observe(op, answer);
    done({
      status: answer.status,
      ...(answer.error === undefined ? {} : { error: answer.error }),
      ...(observed === undefined ? {} : { observed }),
      ...(answer.retryAfter === undefined ? {} : { retryAfter: answer.retryAfter }),
    });
    if (!allowed.has(answer.status) && unexpected.length < 20) {
      unexpected.push(`${method} ${path} on ${target.name}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer;
  };

  const backoff = async (answer: Answer): Promise<void> => {
    const seconds = Number(answer.retryAfter);
    const ms = Number.isFinite(seconds) && seconds > 0 ? Math.min(1_000, seconds * 1_000) : 50;
    await sleep(ms * (0.5 + Math.random()));
  };

  const writer = async (index: number): Promise<void> => {
    for (let n = 1; !stop; n += 1) {
      const context = options.contexts[(index + n * options.writers) % options.contexts.length] ?? '';
      const key = `${context}-${keyPrefix}-w${index}-m${n}`;
      let ifVersion: number | undefined;
      if (Math.random() < ifVersionRatio) {
        const target = pick();
        if (target !== undefined) {
          const info = await send(
            target,
            { kind: 'read', context, read: 'get' },
            'GET',
            `/v1/contexts/${context}`,
          );
          if (info.status === 200) ifVersion = num((info.body as Record<string, unknown>)['version']);
        }
      }
      const op: Operation = {
        kind: 'append',
        context,
        key,
        ...(ifVersion === undefined ? {} : { ifVersion }),
      };
      const message = { role: 'user', parts: [{ type: 'text', text: `${key} ${payload}` }], id: key };
      let done = false;
      for (let attempt = 0; attempt < attemptsMax && !done; attempt += 1) {
        const target = pick();
        if (target === undefined) {
          await sleep(100);
          continue;
        }
        const answer = await send(target, op, 'POST', `/v1/contexts/${context}/messages`, {
          message,
          ...(ifVersion === undefined ? {} : { if_version: ifVersion }),
        });
        if (answer.status === 200 || answer.status === 201) {
          acked += 1;
          done = true;
        } else if (answer.status === 409 || !allowed.has(answer.status)) {
          done = true;
        } else {
          if (stop && attempt > 0) break;
          await backoff(answer);
        }
      }
      if (!done) abandoned += 1;
      if (options.writePauseMs !== undefined) await sleep(options.writePauseMs);
    }
  };

  const reader = async (index: number): Promise<void> => {
    const kinds = ['tail', 'window', 'get'] as const;
    for (let n = 0; !stop; n += 1) {
      const context = options.contexts[(index * 7 + n) % options.contexts.length] ?? '';
      const read = kinds[n % kinds.length] ?? 'get';
      const target = pick();
      if (target === undefined) {
        await sleep(100);
        continue;
      }
      const path =
        read === 'tail'
          ? `/v1/contexts/${context}/tail?limit=5`
          : read === 'window'
            ? `/v1/contexts/${context}/context`
            : `/v1/contexts/${context}`;
      const answer = await send(target, { kind: 'read', context, read }, 'GET', path);
      if (answer.status !== 200) await backoff(answer);
      else if (options.readPauseMs !== undefined) await sleep(options.readPauseMs);
    }
  };

  const loops = [
    ...Array.from({ length: options.writers }, (_, i) => writer(i)),
    ...Array.from({ length: options.readers }, (_, i) => reader(i)),
  ];
  return {
    unexpected,
    acked: () => acked,
    stop: async () => {
      stop = true;
      await Promise.all(loops);
      return { appendsAcked: acked, appendsAbandoned: abandoned, unexpected };
    },
  };
};

let probeRun = 0;

/**
 * Time to writable, measured directly: one prober per context appends (a fresh id each attempt,
 * recorded like any other request) through `targets` in turn, each attempt allowed `attemptMs`,
 * until one is acknowledged. Resolves with the worst time over contexts from `since` (ms on the
 * recorder's clock), or rejects after `timeoutMs`.
 */
export const probeWritable = async (
  recorder: Recorder,
  contexts: readonly string[],
  targets: () => readonly Target[],
  since: number,
  timeoutMs: number,
  attemptMs = 2_000,
): Promise<number> => {
  probeRun += 1;
  const run = `p${probeRun}${Math.random().toString(36).slice(2, 6)}`;
  const deadline = since + timeoutMs;
  const times = await Promise.all(
    contexts.map(async (context, c) => {
      for (let attempt = 0; recorder.now() < deadline; attempt += 1) {
        const list = targets();
        const target = list[(c + attempt) % Math.max(1, list.length)];
        if (target === undefined) {
          await sleep(100);
          continue;
        }
        const key = `${context}-${run}-a${attempt}`;
        const op: Operation = { kind: 'append', context, key };
        const done = recorder.begin(target.name, op);
        const answer = await request(
          target.base,
          'POST',
          `/v1/contexts/${context}/messages`,
          { message: { role: 'user', parts: [{ type: 'text', text: 'probe' }], id: key } },
          { 'idempotency-key': key },
          attemptMs,
        );
        const observed = observe(op, answer);
        done({ status: answer.status, ...(observed === undefined ? {} : { observed }) });
        if (answer.status === 201 || answer.status === 200) return recorder.now() - since;
        await sleep(50);
      }
      throw new Error(`${context} not writable within ${timeoutMs} ms`);
    }),
  );
  return Math.round(Math.max(...times));
};
