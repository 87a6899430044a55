// The close codes a stream ends with (README "Live streams"), one place for the websocket and the
// SSE mirror (which sends them in its final `close` event).

export const CloseCode = {
  /** The context was tombstoned: the `tombstoned` frame was the last. Do not reconnect. */
  tombstoned: 1000,
  /** The node is shutting down: reconnect (to any node) with your cursor. */
  goingAway: 1001,
  /** A client frame over the size limit (uWS sends it itself). */
  frameTooLarge: 1009,
  /** The server failed while serving the stream: reconnect with your cursor. */
  internalError: 1011,
  /** The node could not keep serving this context here (its replica moved or the peer is gone). */
  tryAgainLater: 1013,
  /** The consumer fell behind: its buffer filled. Reconnect with your cursor; nothing is lost. */
  slowConsumer: 4000,
  /** No client frame (pong or any other) within the idle timeout. */
  idleTimeout: 4001,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];
