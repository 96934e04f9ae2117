/**
 * What the ext_proc protocol layer needs from the router: pick endpoints for a request, then
 * hear how the response went. The protocol layer (ext-proc-session.ts) knows Envoy's wire rules
 * and nothing about scheduling; the backend (lifecycle-backend.ts) knows the scheduler and the
 * request lifecycle and nothing about Envoy.
 */

/** A request as the endpoint picker sees it once its body is complete. */
export interface PickRequest {
  /** The request id (client `x-request-id` when sane, else generated); sent upstream too. */
  requestId: string;
  method: string;
  /** `:path` without the query string. */
  path: string;
  /** Request headers, keys lower-cased, pseudo headers (`:path`...) excluded. */
  headers: Record<string, string>;
  /** The whole body, or undefined for a bodyless request (headers with end_of_stream). */
  body: Buffer | undefined;
  /** The gateway's subset hint (addresses); undefined = no hint. */
  subset: ReadonlySet<string> | undefined;
  /** Aborted when Envoy cancels the stream while the pick is in progress. */
  signal: AbortSignal;
}

/** The response's status line as Envoy reports it in `response_headers`. */
export interface ResponseStart {
  status: number;
  contentType: string;
  /** `envoy.lb/x-gateway-destination-endpoint-served`, when the gateway set it. */
  servedAddress: string | undefined;
  /** Headers-only response (no body follows). */
  endOfStream: boolean;
}

/** One picked request's remaining life; the session calls `end` or `abort` exactly once. */
export interface PickedExchange {
  /** The response started; returns headers to add to the client's response. */
  responseStarted(start: ResponseStart): Record<string, string>;
  /** One response body chunk as it arrived from upstream (first one = first token). */
  responseChunk(chunk: Buffer): void;
  /** The response finished (end of stream or trailers). */
  end(): void;
  /** The stream went away before the response finished (client gone, upstream failed, Envoy error). */
  abort(reason: string): void;
}

/** The endpoints picked for a request. */
export interface Pick {
  /** `ip:port` addresses, primary first, then fallbacks. */
  destinations: string[];
  /** The body to send upstream when it was rewritten; default the received one. */
  body?: Buffer;
  /** Request headers to set upstream (e.g. `x-prefiller-host-port` for a P/D decode sidecar). */
  headers?: Record<string, string>;
  exchange: PickedExchange;
}

/** Picks endpoints; throws a KvrError (status 400/404/413/429/503...) to answer the client at once. */
export interface EndpointPickerBackend {
  pick(req: PickRequest): Promise<Pick>;
}
