// What a route handler answers: a status, an already-serialized body and extra headers. Bodies are
// stringified exactly once, here or by the handler, and written by the exchange without copies.

export type Header = readonly [name: string, value: string];

export interface Reply {
  readonly status: number;
  /** Serialized body; undefined for 204. */
  readonly body?: string;
  /** Defaults to application/json. */
  readonly contentType?: string;
  readonly headers?: readonly Header[];
}

export const jsonContentType = 'application/json';

export const jsonReply = (status: number, value: unknown, headers?: readonly Header[]): Reply =>
  headers === undefined
    ? { status, body: JSON.stringify(value) }
    : { status, body: JSON.stringify(value), headers };

export const noContentReply: Reply = { status: 204 };
