// The frames of a context's stream (API.md "Websocket stream"), the same for the websocket and its
// SSE mirror: JSON objects with `type` and, for everything that happened to the context, the
// `version` it happened at. One append is one version: its `message`, the `compaction` its policy
// run made and the `context` change of its window share that version and leave together.

import type { StoredMessage } from '../api/domain.js';
import type { ContextEvent, SeqRange } from '../context/events.js';

export type StreamFrame =
  | {
      readonly type: 'message';
      readonly version: number;
      readonly seq: number;
      readonly message: StoredMessage;
    }
  | {
      readonly type: 'context';
      readonly version: number;
      readonly change: 'created' | 'updated' | 'metadata' | 'window';
      readonly needs_compaction?: boolean;
      readonly used_tokens?: number;
    }
  | {
      readonly type: 'compaction';
      readonly version: number;
      readonly reason: 'policy' | 'replace';
      readonly range?: SeqRange;
    }
  | { readonly type: 'tombstoned'; readonly version: number }
  | { readonly type: 'gap'; readonly expected: number; readonly actual: number }
  | { readonly type: 'reset'; readonly version: number }
  | { readonly type: 'ping' };

/** The frame of a context event (the stored `at` stamps stay server-side). */
export const frameOf = (event: ContextEvent): StreamFrame => {
  switch (event.type) {
    case 'message':
      return event;
    case 'context': {
      const { type, version, change, needs_compaction, used_tokens } = event;
      return {
        type,
        version,
        change,
        ...(needs_compaction === undefined ? {} : { needs_compaction }),
        ...(used_tokens === undefined ? {} : { used_tokens }),
      };
    }
    case 'compaction': {
      const { type, version, reason, range } = event;
      return { type, version, reason, ...(range === undefined ? {} : { range }) };
    }
    case 'tombstoned':
      return { type: 'tombstoned', version: event.version };
  }
};

// One event reaches every subscriber of its context: it is encoded once, not once per subscriber.
const encodedEvents = new WeakMap<ContextEvent, string>();

export const encodeEvent = (event: ContextEvent): string => {
  let text = encodedEvents.get(event);
  if (text === undefined) {
    text = JSON.stringify(frameOf(event));
    encodedEvents.set(event, text);
  }
  return text;
};

export const encodeFrame = (frame: StreamFrame): string => JSON.stringify(frame);

export const pingFrame = encodeFrame({ type: 'ping' });
