/**
 * The OpenAI front end's transport: sends a decided request to its endpoint over HTTP and
 * streams the answer back unbuffered, translating what it sees into lifecycle calls
 * (src/lifecycle/request-lifecycle.ts owns retries, timeouts, accounting and metrics).
 *
 * What goes upstream (see {@link planUpstream}):
 * - streaming client: `stream_options.include_usage` is forced on so usage is known for every
 *   request; when the client did not ask for usage, the extra usage chunk is dropped on the way
 *   back, so the client sees exactly the stream it asked for;
 * - non-streaming client: sent upstream as a stream (with usage) and re-assembled into vLLM's
 *   exact non-streaming body (response-assembler.ts), so the first token, i.e. the end of
 *   prefill, is seen for every request; requests a stream cannot reproduce exactly (logprobs,
 *   tools, echo, beam search, kv_transfer_params) pass through unchanged, and then prefill is
 *   taken to end with the answer.
 *
 * Retry window: nothing is written to the client before the first token of a stream (a leading
 * role-only chunk is held back) or before the whole re-assembled body, so a refused connection, a
 * reset, a 5xx or a stall before that point is retried on another replica when the lifecycle
 * allows it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../../core/endpoint.js';
import type { InferenceRequest } from '../../core/request.js';
import type { RequestLifecycle, UpstreamAttempt } from '../../lifecycle/request-lifecycle.js';
import { canAssemble } from './response-assembler.js';
import { topLevelValueSpan } from './json-splice.js';
import type { Usage } from './usage-sniffer.js';
import { runExchange, type ExchangeRequest } from './upstream-exchange.js';

/** Request headers never forwarded (hop-by-hop, or recomputed). */
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length', 'expect']);

/** Transport settings of the proxy. */
export interface ProxyDeps {
  dispatcher?: Dispatcher;
  /** Called when an endpoint refused a connection (mark it down). */
  onEndpointDown?: (ep: Endpoint) => void;
  /** Undici's idle timeouts towards endpoints (ms, 0 = none), a backstop behind the lifecycle's timers. */
  upstreamTimeoutMs: number;
  /**
   * Non-streaming requests: `stream` (default) sends them upstream as streams and re-assembles the
   * body (prefill end seen, retry until the end); `passthrough` forwards them as they are (about
   * 20 % less router CPU for such requests; prefill then counts until the answer).
   */
  nonStreamingUpstream?: 'stream' | 'passthrough';
}

/** Optional per-request extras of {@link proxyRequest} (observability). */
export interface ProxyExtras {
  /** For SSE responses: text written after the upstream stream ended, before the response ends. */
  sseTrailer?: (info: { endpoint: Endpoint; usage: Usage | undefined; ttftMs: number | undefined }) => string | undefined;
}

/** How a request goes upstream; see the file comment. */
export interface UpstreamPlan {
  body: Buffer | string;
  /** `stream`: pass events through; `strip`: pass them minus the injected usage chunk; `assemble`: rebuild a JSON body; `json`: pass through a non-streaming answer. */
  mode: 'stream' | 'strip' | 'assemble' | 'json';
}

const INCLUDE_USAGE = Buffer.from(',"stream_options":{"include_usage":true}');
const STREAM_WITH_USAGE = Buffer.from(',"stream":true,"stream_options":{"include_usage":true}');

/**
 * `raw` (a JSON object) with `fields` (`,"k":v...`) added before its closing brace, without
 * re-serializing the prompt; undefined when `raw` does not end with `}`. Only for keys the body
 * does not have (no duplicate keys: some strict parsers refuse them).
 */
function appendFields(raw: Buffer, fields: Buffer): Buffer | undefined {
  let i = raw.length - 1;
  while (i >= 0 && (raw[i] === 0x20 || raw[i] === 0x0a || raw[i] === 0x0d || raw[i] === 0x09)) i--;
  if (i < 1 || raw[i] !== 0x7d) return undefined;
  return Buffer.concat([raw.subarray(0, i), fields, raw.subarray(i)]);
}

const TRUE = Buffer.from('true');

/** `"stream": false|null` turned into `true` plus include_usage, in place (no re-serialization). */
function streamTrueWithUsage(raw: Buffer): Buffer | undefined {
  const span = topLevelValueSpan(raw, 'stream');
  if (span === undefined) return undefined;
  let i = raw.length - 1;
  while (i >= 0 && (raw[i] === 0x20 || raw[i] === 0x0a || raw[i] === 0x0d || raw[i] === 0x09)) i--;
  if (i < 1 || raw[i] !== 0x7d || i < span[1]) return undefined;
  // one copy: head, `true`, middle, the usage option, closing brace
  return Buffer.concat([raw.subarray(0, span[0]), TRUE, raw.subarray(span[1], i), INCLUDE_USAGE, raw.subarray(i)]);
}

/** Decides how to send `ireq` upstream (see the file comment). */
export function planUpstream(ireq: InferenceRequest, raw: Buffer, nonStreaming: 'stream' | 'passthrough' = 'stream'): UpstreamPlan {
  const body = ireq.body;
  const so = body.stream_options;
  if (ireq.stream) {
    if (so !== undefined && so !== null && typeof so !== 'object') return { body: raw, mode: 'stream' };
    const opts = (so ?? {}) as Record<string, unknown>;
    if (opts.include_usage === true) return { body: raw, mode: 'stream' };
    const spliced = so === undefined ? appendFields(raw, INCLUDE_USAGE) : undefined;
    return { body: spliced ?? JSON.stringify({ ...body, stream_options: { ...opts, include_usage: true } }), mode: 'strip' };
  }
  if (body.stream !== undefined && body.stream !== false && body.stream !== null) return { body: raw, mode: 'json' };
  if (nonStreaming === 'passthrough' || !canAssemble(body)) return { body: raw, mode: 'json' };
  const spliced = body.stream === undefined ? appendFields(raw, STREAM_WITH_USAGE) : body.stream_options === undefined ? streamTrueWithUsage(raw) : undefined;
  return { body: spliced ?? JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }), mode: 'assemble' };
}

/** Proxies one decided request; every outcome ends `lc` (the caller sends `lc.error` when it failed before any byte). */
export async function proxyRequest(
  deps: ProxyDeps,
  lc: RequestLifecycle,
  ireq: InferenceRequest,
  raw: Buffer,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  extraHeaders: Record<string, string>,
  extras: ProxyExtras = {},
): Promise<void> {
  const plan = planUpstream(ireq, raw, deps.nonStreamingUpstream);
  // ireq.headers is the request's one copy (arrays joined); only the forwarded subset is copied.
  const headers: Record<string, string> = {};
  const inHeaders = ireq.headers;
  for (const k in inHeaders) {
    const v = inHeaders[k];
    if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = v;
  }
  headers['content-type'] = 'application/json';
  headers['x-request-id'] = ireq.id;
  const x: ExchangeRequest = {
    dispatcher: deps.dispatcher,
    onEndpointDown: deps.onEndpointDown,
    upstreamTimeoutMs: deps.upstreamTimeoutMs,
    lc,
    path,
    headers,
    body: plan.body,
    mode: plan.mode,
    res,
    extraHeaders,
    sseTrailer: extras.sseTrailer,
  };
  let att: UpstreamAttempt | undefined = lc.dispatch({ firstTokenObservable: plan.mode !== 'json' });
  while (att !== undefined) att = await runExchange(x, att);
}
