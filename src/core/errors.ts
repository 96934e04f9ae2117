/**
 * kvroute's one error class. Every error the router, simulator or CLI raises on purpose is a
 * {@link KvrError} with a stable `code`; HTTP statuses and OpenAI error `type`s are mapped from
 * the code in exactly one place ({@link ERROR_CODES}). Messages say what went wrong and what to do.
 */

/** Stable error codes, their HTTP status and the OpenAI error `type` they map to. */
export const ERROR_CODES = {
  KVR_ERR_BAD_REQUEST: { status: 400, type: 'invalid_request_error' },
  KVR_ERR_BAD_JSON: { status: 400, type: 'invalid_request_error' },
  KVR_ERR_UNKNOWN_MODEL: { status: 404, type: 'not_found_error' },
  KVR_ERR_NOT_FOUND: { status: 404, type: 'not_found_error' },
  KVR_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error' },
  /** A request the router refuses to forward (P/D sidecar SSRF protection). */
  KVR_ERR_FORBIDDEN: { status: 403, type: 'permission_error' },
  KVR_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error' },
  KVR_ERR_UNSUPPORTED_MEDIA: { status: 415, type: 'invalid_request_error' },
  KVR_ERR_CONTEXT_TOO_LONG: { status: 400, type: 'invalid_request_error' },
  KVR_ERR_OVERLOADED: { status: 429, type: 'rate_limit_error' },
  KVR_ERR_INTERNAL: { status: 500, type: 'internal_error' },
  KVR_ERR_UPSTREAM: { status: 502, type: 'upstream_error' },
  KVR_ERR_NO_ENDPOINT: { status: 503, type: 'service_unavailable' },
  KVR_ERR_UPSTREAM_TIMEOUT: { status: 504, type: 'upstream_error' },
  KVR_ERR_SIM_INJECTED: { status: 500, type: 'internal_error' },
  KVR_ERR_SIM_DOWN: { status: 503, type: 'service_unavailable' },
  KVR_ERR_CONFIG: { status: 500, type: 'internal_error' },
  KVR_ERR_USAGE: { status: 400, type: 'invalid_request_error' },
  KVR_ERR_INDEX_UNAVAILABLE: { status: 503, type: 'service_unavailable' },
  // Public port (src/server/http/): API keys, malformed or slow clients.
  KVR_ERR_UNAUTHORIZED: { status: 401, type: 'invalid_request_error' },
  KVR_ERR_REQUEST_TIMEOUT: { status: 408, type: 'invalid_request_error' },
  KVR_ERR_HEADERS_TOO_LARGE: { status: 431, type: 'invalid_request_error' },
  KVR_ERR_TOO_MANY_CONNECTIONS: { status: 503, type: 'service_unavailable' },
  /** The client went away before the response completed (logged and counted as 499, like nginx). */
  KVR_ERR_CLIENT_CLOSED: { status: 499, type: 'client_closed_request' },
} as const satisfies Record<string, { status: number; type: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface KvrErrorOptions {
  /** The request field at fault (OpenAI `param`). */
  param?: string;
  cause?: unknown;
}

/** The one error class of kvroute. */
export class KvrError extends Error {
  readonly code: ErrorCode;
  readonly param: string | undefined;

  constructor(code: ErrorCode, message: string, opts: KvrErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KvrError';
    this.code = code;
    this.param = opts.param;
  }

  /** HTTP status for this error. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** OpenAI-shaped error body: `{"error": {"message", "type", "param", "code"}}`. */
  toOpenAI(): { error: { message: string; type: string; param: string | null; code: string } } {
    return {
      error: {
        message: this.message,
        type: ERROR_CODES[this.code].type,
        param: this.param ?? null,
        code: this.code,
      },
    };
  }
}

/** Wraps anything thrown into a {@link KvrError} (unknown errors become KVR_ERR_INTERNAL). */
export function toKvrError(err: unknown): KvrError {
  if (err instanceof KvrError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new KvrError('KVR_ERR_INTERNAL', `internal error: ${msg}`, { cause: err });
}
