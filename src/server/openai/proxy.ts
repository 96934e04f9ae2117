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
import { once } from 'node:events';
import { request, type Dispatcher } from 'undici';
import type { Endpoint } from '../../core/endpoint.js';
import type { InferenceRequest } from '../../core/request.js';
import type { RequestLifecycle, UpstreamAttempt } from '../../lifecycle/request-lifecycle.js';
import { isConnectError } from '../../datalayer/endpoint-scraper.js';
import { canAssemble, ResponseAssembler } from './response-assembler.js';
import { SseShaper, UsageSniffer, type Usage } from './usage-sniffer.js';
import { sessionTokenFor } from '../../scheduling/scorers/session-affinity-scorer.js';

/** Request headers never forwarded (hop-by-hop, or recomputed). */
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length', 'expect']);
/** Response headers never passed back. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

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
  const spliced = body.stream === undefined ? appendFields(raw, STREAM_WITH_USAGE) : undefined;
  return { body: spliced ?? JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }), mode: 'assemble' };
}

const noop = (): void => undefined;

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
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  headers['content-type'] = 'application/json';
  headers['x-request-id'] = ireq.id;
  let att: UpstreamAttempt | undefined = lc.dispatch({ firstTokenObservable: plan.mode !== 'json' });
  while (att !== undefined) att = await attempt(deps, lc, att, plan, path, headers, res, extraHeaders, extras);
}

/** One upstream attempt; returns the next attempt when the lifecycle retries. */
async function attempt(
  deps: ProxyDeps,
  lc: RequestLifecycle,
  att: UpstreamAttempt,
  plan: UpstreamPlan,
  path: string,
  headers: Record<string, string>,
  res: ServerResponse,
  extraHeaders: Record<string, string>,
  extras: ProxyExtras,
): Promise<UpstreamAttempt | undefined> {
  const ep = att.endpoint;
  let up: Dispatcher.ResponseData;
  try {
    up = await request(ep.url + path, {
      method: 'POST',
      headers,
      body: plan.body,
      dispatcher: deps.dispatcher,
      signal: att.signal,
      headersTimeout: deps.upstreamTimeoutMs,
      bodyTimeout: deps.upstreamTimeoutMs,
    });
  } catch (err) {
    if (isConnectError(err)) deps.onEndpointDown?.(ep);
    return att.fail(att.classify(err));
  }
  const retry = att.responded(up.statusCode);
  if (retry !== null) {
    up.body.dump().catch(noop);
    return retry;
  }
  const contentType = String(up.headers['content-type'] ?? '');
  const sse = contentType.includes('text/event-stream');
  const assembler = sse && plan.mode === 'assemble' ? new ResponseAssembler(lc.request!.api) : undefined;
  const shaper = sse ? new SseShaper({ stripUsage: plan.mode === 'strip', assembler }) : undefined;
  const sniffer = sse ? undefined : new UsageSniffer(contentType);
  const outHeaders: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(up.headers)) {
    if (v !== undefined && !DROP_RESPONSE.has(k)) outHeaders[k] = v;
  }
  Object.assign(outHeaders, extraHeaders, { 'x-kvroute-endpoint': ep.id, 'x-session-token': sessionTokenFor(ep.id) });
  if (plan.mode === 'strip') delete outHeaders['content-length'];
  const send = async (data: Buffer | string): Promise<void> => {
    if (!res.headersSent) {
      res.writeHead(up.statusCode, outHeaders);
      att.commit();
    }
    att.chunk();
    if (!res.write(data)) await once(res, 'drain', { signal: att.signal });
  };
  // Stream output before the first token (a role-only chunk) is held back, so a failure before
  // the first token can still be retried elsewhere.
  let held: Array<Buffer | string> | undefined;
  try {
    for await (const chunk of up.body as AsyncIterable<Buffer>) {
      if (shaper !== undefined) {
        let out = shaper.push(chunk);
        if (!shaper.firstToken && assembler === undefined) {
          if (out !== undefined && out.length > 0) (held ??= []).push(out);
          continue;
        }
        if (held !== undefined) {
          if (out !== undefined) held.push(out);
          out = Buffer.concat(held.map((h) => (typeof h === 'string' ? Buffer.from(h) : h)));
          held = undefined;
        }
        if (shaper.firstToken) att.firstToken();
        if (assembler !== undefined && shaper.error !== undefined) {
          // vLLM answers a failed non-streaming request with the error status and body.
          const next = att.responded(shaper.error.status);
          if (next !== null) {
            up.body.destroy();
            return next;
          }
          break;
        }
        if (out !== undefined && out.length > 0) await send(out);
      } else {
        sniffer!.push(chunk);
        await send(chunk);
      }
    }
    if (shaper !== undefined) {
      const rest = shaper.end();
      if (held !== undefined) for (const h of held) await send(h);
      if (rest !== undefined) await send(rest);
    }
  } catch (err) {
    up.body.destroy();
    const next = att.fail(att.classify(err));
    if (next !== undefined) return next;
    if (lc.outcome === 'aborted') return undefined;
    if (res.headersSent) {
      if (sse && !res.writableEnded && !res.destroyed && lc.error !== undefined) res.end(`data: ${JSON.stringify(lc.error.toOpenAI())}\n\n`);
      else res.destroy();
    }
    return undefined;
  }
  const usage = shaper !== undefined ? shaper.usage : sniffer!.usage();
  att.usage(usage);
  if (assembler !== undefined) {
    const e = shaper!.error;
    const status = e !== undefined ? e.status : up.statusCode;
    const body = JSON.stringify(e !== undefined ? e.body : assembler.body());
    for (const k of Object.keys(outHeaders)) if (k === 'content-type' || k === 'content-length' || k === 'cache-control') delete outHeaders[k];
    res.writeHead(status, { ...outHeaders, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    att.commit();
    res.end(body);
    att.end({ status, usage });
    return undefined;
  }
  if (!res.headersSent) {
    res.writeHead(up.statusCode, outHeaders);
    att.commit();
  }
  const trailer = sse && extras.sseTrailer ? extras.sseTrailer({ endpoint: ep, usage, ttftMs: att.ttftMs }) : undefined;
  if (trailer) res.end(trailer);
  else res.end();
  att.end({ status: up.statusCode, usage });
  return undefined;
}
