/**
 * One Envoy ext_proc stream (one HTTP request and its response), following the GIE
 * endpoint-picker protocol with bodies in FULL_DUPLEX_STREAMED mode.
 *
 * Algorithm (request phase):
 * 1. `request_headers`: remember them; reply NOTHING yet (the headers reply carries the pick,
 *    which needs the body). With end_of_stream (bodyless request): pick at once and reply.
 * 2. `request_body` chunks: buffer up to the cap (413 ImmediateResponse beyond it). The chunk
 *    with end_of_stream, or `request_trailers` when the request has trailers, ends the body.
 * 3. Pick, then reply IN THIS ORDER: the headers reply (`clear_route_cache`, destination header
 *    `ip:port[,ip:port...]` primary first, Content-Length, client-sent destination/control
 *    headers removed; dynamic metadata `envoy.lb` holding the same destination string), then
 *    the body as `streamed_response` chunks of <= 62,000 B with end_of_stream on the last, then
 *    (trailers only) an empty TrailersResponse. A pick failure is an ImmediateResponse.
 * Response phase: `response_headers` gives status, content type and the endpoint that served
 * (`envoy.lb/x-gateway-destination-endpoint-served`); SSE chunks are echoed at once, other
 * bodies buffered to the end (bounded) and echoed in chunks; every chunk is reported to the
 * exchange as it arrives (first token, usage). Messages are handled strictly in arrival order
 * (one queue), so replies can never overtake each other.
 * Exactly once: after a pick the exchange hears `end` (response finished) or `abort` (stream
 * cancelled, errored or closed early), never both, never twice.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { KvrError, toKvrError } from '../../core/errors.js';
import {
  DESTINATION_HEADER, DROPPED_REASON_HEADER, LB_NAMESPACE, SERVED_KEY, destinationMetadata, headerMutation, immediateResponse,
  readHeaderMap, streamedBodyReplies, type HttpBody, type HttpHeaders, type ProcessingRequest, type ProcessingResponse,
} from './ext-proc-messages.js';
import type { EndpointPickerBackend, PickedExchange } from './picker-backend.js';
import { readMetadataString, readSubsetHint } from './subset-hint.js';

/** Request headers the picker consumes and never forwards (llm-d's control headers and old aliases). */
/** Set only by the picker (P/D prefill endpoint); a client copy is never forwarded (SSRF). */
export const PREFILLER_HEADER = 'x-prefiller-host-port';

export const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'x-llm-d-inference-objective', 'x-llm-d-inference-fairness-id', 'x-llm-d-model-name-rewrite', 'x-llm-d-slo-ttft-ms', 'x-llm-d-slo-tpot-ms',
  'x-gateway-inference-objective', 'x-gateway-inference-fairness-id', 'x-gateway-model-name-rewrite', 'x-slo-ttft-ms', 'x-slo-tpot-ms',
]);

export interface SessionOptions {
  backend: EndpointPickerBackend;
  /** Sends one reply on the stream. */
  send(msg: ProcessingResponse): void;
  /** Ends the stream cleanly (after an ImmediateResponse), or with an error (protocol violation). */
  close(err?: KvrError): void;
  /** Largest request body buffered (413 beyond). */
  maxBodyBytes: number;
  /** Largest non-streamed response body buffered before echoing; beyond it chunks pass through. */
  maxResponseBufferBytes: number;
  logger: Logger;
}

type Phase = 'request-headers' | 'request-body' | 'picking' | 'upstream' | 'response-body' | 'done';

function dropReason(err: KvrError): string | undefined {
  if (err.code === 'KVR_ERR_NO_ENDPOINT') return 'rejected-no-endpoints';
  if (err.code === 'KVR_ERR_OVERLOADED') return 'rejected-saturated';
  return undefined;
}

/** The state machine of one ext_proc stream. */
export class ExtProcSession {
  readonly #o: SessionOptions;
  #phase: Phase = 'request-headers';
  #queue: Promise<void> = Promise.resolve();
  #requestHeaders = new Map<string, string>();
  #metadata: ProcessingRequest['metadata_context'];
  #chunks: Buffer[] = [];
  #size = 0;
  #requestId = '';
  #exchange: PickedExchange | undefined;
  #finished = false;
  #abort = new AbortController();
  #sse = false;
  #respChunks: Buffer[] = [];
  #respSize = 0;
  #respPassThrough = false;

  constructor(opts: SessionOptions) {
    this.#o = opts;
  }

  /** The request id once headers arrived. */
  get requestId(): string {
    return this.#requestId;
  }

  /** Handles one message from Envoy (queued behind any message still being handled). */
  push(msg: ProcessingRequest): void {
    this.#queue = this.#queue.then(() => this.#handle(msg)).catch((err: unknown) => this.#fatal(toKvrError(err)));
  }

  /** The stream ended or was cancelled: an unfinished exchange is aborted (exactly once). */
  streamClosed(reason: string): void {
    this.#abort.abort();
    this.#queue = this.#queue.then(() => {
      if (this.#phase !== 'done') this.#finish(reason);
    });
  }

  /** Whether the request/response pair is still in progress. */
  get active(): boolean {
    return this.#phase !== 'done';
  }

  async #handle(msg: ProcessingRequest): Promise<void> {
    if (this.#phase === 'done') return;
    switch (msg.request) {
      case 'request_headers':
        return this.#onRequestHeaders(msg, msg.request_headers ?? {});
      case 'request_body':
        return this.#onRequestBody(msg.request_body ?? {});
      case 'request_trailers':
        if (this.#phase !== 'request-body') return this.#violation('request_trailers outside the request body');
        return this.#decide(true);
      case 'response_headers':
        return this.#onResponseHeaders(msg, msg.response_headers ?? {});
      case 'response_body':
        return this.#onResponseBody(msg.response_body ?? {});
      case 'response_trailers':
        if (this.#phase !== 'response-body') return this.#violation('response_trailers outside the response body');
        this.#flushResponse(false);
        this.#o.send({ response_trailers: {} });
        this.#finish();
        return;
      default:
        return this.#violation(`unknown ProcessingRequest kind ${String(msg.request)}`);
    }
  }

  async #onRequestHeaders(msg: ProcessingRequest, h: HttpHeaders): Promise<void> {
    if (this.#phase !== 'request-headers') return this.#violation('request_headers twice on one stream');
    const mode = msg.protocol_config?.request_body_mode;
    if (mode !== undefined && mode !== 'FULL_DUPLEX_STREAMED') {
      return this.#reject(new KvrError('KVR_ERR_CONFIG', `the ext_proc filter sends request bodies in ${mode} mode; kvroute needs processing_mode.request_body_mode: FULL_DUPLEX_STREAMED (and trailers SEND); see docs/ext-proc.md`));
    }
    this.#requestHeaders = readHeaderMap(h.headers);
    this.#metadata = msg.metadata_context;
    const rid = this.#requestHeaders.get('x-request-id');
    this.#requestId = rid !== undefined && rid.length > 0 && rid.length <= 128 && /^[\x21-\x7e]+$/.test(rid) ? rid : randomUUID();
    if (h.end_of_stream) return this.#decide(false, true);
    this.#phase = 'request-body';
  }

  async #onRequestBody(b: HttpBody): Promise<void> {
    if (this.#phase !== 'request-body') return this.#violation('request_body before request_headers or after the body ended');
    const chunk = b.body ?? Buffer.alloc(0);
    this.#size += chunk.length;
    if (this.#size > this.#o.maxBodyBytes) {
      return this.#reject(new KvrError('KVR_ERR_BODY_TOO_LARGE', `request body is larger than ${this.#o.maxBodyBytes} bytes; send a shorter prompt or raise --max-body-bytes`));
    }
    if (chunk.length > 0) this.#chunks.push(chunk);
    if (b.end_of_stream) return this.#decide(false);
  }

  /** Body complete (or bodyless): pick and reply headers -> body -> trailers. */
  async #decide(trailers: boolean, bodyless = false): Promise<void> {
    this.#phase = 'picking';
    const headers: Record<string, string> = {};
    const remove: string[] = [];
    for (const [k, v] of this.#requestHeaders) {
      if (k.startsWith(':')) continue;
      if (k.startsWith(DESTINATION_HEADER)) {
        // Client-sent destinations are never believed nor forwarded (the exact name is overwritten).
        if (k !== DESTINATION_HEADER) remove.push(k);
        continue;
      }
      if (k === PREFILLER_HEADER) {
        remove.push(k); // only the picker names a prefill endpoint
        continue;
      }
      if (CONTROL_HEADERS.has(k)) remove.push(k); // read by the picker, not forwarded
      headers[k] = v;
    }
    const received = bodyless ? undefined : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    let pick;
    try {
      pick = await this.#o.backend.pick({
        requestId: this.#requestId,
        method: this.#requestHeaders.get(':method') ?? 'GET',
        path: (this.#requestHeaders.get(':path') ?? '/').split('?')[0],
        headers,
        body: received,
        subset: readSubsetHint(this.#metadata?.filter_metadata),
        signal: this.#abort.signal,
      });
    } catch (err) {
      if (this.#abort.signal.aborted) {
        this.#phase = 'done';
        return;
      }
      return this.#reject(toKvrError(err));
    }
    this.#exchange = pick.exchange;
    if (this.#abort.signal.aborted) return this.#finish('stream closed while picking');
    const destination = pick.destinations.join(',');
    const body = bodyless ? undefined : (pick.body ?? received!);
    const set: Record<string, string> = { ...pick.headers, [DESTINATION_HEADER]: destination, 'x-request-id': this.#requestId };
    const removeNow = remove.filter((k) => !(k in set));
    if (body !== undefined) set['content-length'] = String(body.length);
    this.#o.send({
      request_headers: { response: { clear_route_cache: true, header_mutation: headerMutation(set, removeNow) } },
      dynamic_metadata: destinationMetadata(destination),
    });
    if (body !== undefined) for (const r of streamedBodyReplies('request_body', body, !trailers)) this.#o.send(r);
    if (trailers) this.#o.send({ request_trailers: {} });
    this.#phase = 'upstream';
    this.#o.logger.debug({ reqId: this.#requestId, destination }, 'ext_proc picked');
  }

  #onResponseHeaders(msg: ProcessingRequest, h: HttpHeaders): void {
    if (this.#phase !== 'upstream' || this.#exchange === undefined) return this.#violation('response_headers before the request was routed');
    const headers = readHeaderMap(h.headers);
    const contentType = headers.get('content-type') ?? '';
    this.#sse = contentType.includes('text/event-stream');
    const status = Number(headers.get(':status') ?? '0');
    const extra = this.#exchange.responseStarted({
      status: Number.isFinite(status) ? status : 0,
      contentType,
      servedAddress: readMetadataString(msg.metadata_context?.filter_metadata, LB_NAMESPACE, SERVED_KEY),
      endOfStream: h.end_of_stream === true,
    });
    this.#o.send({ response_headers: { response: { header_mutation: headerMutation({ 'x-request-id': this.#requestId, ...extra }) } } });
    this.#phase = 'response-body';
    if (h.end_of_stream) this.#finish();
  }

  #onResponseBody(b: HttpBody): void {
    if (this.#phase !== 'response-body' || this.#exchange === undefined) return this.#violation('response_body before response_headers');
    const chunk = b.body ?? Buffer.alloc(0);
    const eos = b.end_of_stream === true;
    if (chunk.length > 0) this.#exchange.responseChunk(chunk);
    if (this.#sse || this.#respPassThrough) {
      for (const r of streamedBodyReplies('response_body', chunk, eos)) this.#o.send(r);
    } else {
      if (chunk.length > 0) this.#respChunks.push(chunk);
      this.#respSize += chunk.length;
      if (this.#respSize > this.#o.maxResponseBufferBytes) {
        this.#respPassThrough = true; // too big to hold: echo what we have and stream the rest
        this.#flushResponse(eos);
      } else if (eos) {
        this.#flushResponse(true);
      }
    }
    if (eos) this.#finish();
  }

  #flushResponse(eos: boolean): void {
    const body = Buffer.concat(this.#respChunks, this.#respSize);
    this.#respChunks = [];
    this.#respSize = 0;
    if (body.length > 0 || eos) for (const r of streamedBodyReplies('response_body', body, eos)) this.#o.send(r);
  }

  #reject(err: KvrError): void {
    const reason = dropReason(err);
    this.#o.send(immediateResponse(err.status, err.toOpenAI(), { 'x-request-id': this.#requestId || randomUUID(), ...(reason !== undefined ? { [DROPPED_REASON_HEADER]: reason } : {}) }, err.code));
    this.#o.logger.info({ reqId: this.#requestId, status: err.status, code: err.code, msg: err.message }, 'ext_proc request rejected');
    this.#finish('rejected');
    this.#o.close();
  }

  #violation(what: string): void {
    this.#fatal(new KvrError('KVR_ERR_BAD_REQUEST', `ext_proc protocol violation: ${what}; check the Envoy ext_proc filter's processing_mode (docs/ext-proc.md)`));
  }

  #fatal(err: KvrError): void {
    this.#o.logger.warn({ reqId: this.#requestId, err: err.message }, 'ext_proc stream failed');
    this.#finish(err.message);
    this.#o.close(err);
  }

  /** Ends the exchange exactly once: `end` without a reason, else `abort`. */
  #finish(abortReason?: string): void {
    this.#phase = 'done';
    if (this.#finished) return;
    this.#finished = true;
    const ex = this.#exchange;
    if (ex === undefined) return;
    if (abortReason === undefined) ex.end();
    else ex.abort(abortReason);
  }
}
