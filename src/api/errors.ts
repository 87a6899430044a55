// The one error catalogue of the HTTP edge: every failure a client can see has a stable code and
// status here, and is rendered as {"error": code, "message": sentence} in one place (http/).

export const ErrorCodes = {
  invalid_json: 400,
  invalid_context_config: 400,
  invalid_message: 400,
  invalid_metadata: 400,
  invalid_replacement: 400,
  invalid_query: 400,
  invalid_context_id: 400,
  unauthorized: 401,
  context_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  /** [ext] A request body that did not arrive within http.body_timeout_ms. */
  request_timeout: 408,
  conflict: 409,
  context_tombstoned: 409,
  payload_too_large: 413,
  /** [ext] GET /v1/contexts/:id/stream without a websocket upgrade (the SSE mirror is /events). */
  upgrade_required: 426,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  /** [ext] Free disk space on the accepting node is below its floor: writes are refused, reads go on. */
  insufficient_storage: 507,
  raft_unavailable: 503,
  /** [ext] Older history trimmed to the archive is asked for and the archive database does not answer. */
  archive_unavailable: 503,
  raft_timeout: 503,
  overloaded: 503,
  /** [ext] The node is shutting down gracefully: retry on another node (Retry-After says when here). */
  shutting_down: 503,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class ServiceError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  /** Seconds, for 429 and 503 answers. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: { retryAfterSeconds?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServiceError';
    this.code = code;
    this.httpStatus = ErrorCodes[code];
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export const isServiceError = (error: unknown): error is ServiceError => error instanceof ServiceError;
