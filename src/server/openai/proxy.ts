/**
 * Sends a scheduled request to its endpoint and streams the answer back unbuffered.
 *
 * - Retry: when the chosen endpoint refuses the connection before anything was sent to the
 *   client, the request moves to the next ranked candidate (the scheduler is told, so in-flight
 *   accounting follows). Nothing is retried once a response started.
 * - Accounting: the scheduler hears first byte (prefill done) and completion exactly once.
 * - Failures: an endpoint dying mid-stream ends an SSE stream with an OpenAI-shaped error event;
 *   a non-stream response is cut. The client going away aborts the upstream request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { request, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Endpoint } from '../../core/endpoint.js';
import type { Clock } from '../../core/clock.js';
import { KvrError } from '../../core/errors.js';
import type { InferenceRequest } from '../../core/request.js';
import type { Scheduler, SchedulingResult } from '../../scheduling/types.js';
import type { CacheStatusLabel, RouterMetrics } from '../../metrics/router-metrics.js';
import { isConnectError } from '../../datalayer/endpoint-scraper.js';
import { UsageSniffer, type Usage } from './usage-sniffer.js';
import { sessionTokenFor } from '../../scheduling/scorers/session-affinity-scorer.js';

/** Request headers never forwarded (hop-by-hop, or recomputed). */
const DROP_REQUEST = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'content-length', 'expect']);
/** Response headers never passed back. */
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

export interface ProxyDeps {
  scheduler: Scheduler;
  clock: Clock;
  metrics: RouterMetrics;
  dispatcher?: Dispatcher;
  /** Called when an endpoint refused a connection (mark it down). */
  onEndpointDown?: (ep: Endpoint) => void;
  /** Headers timeout towards endpoints (ms): how long a prefill may take before the first byte. */
  upstreamTimeoutMs: number;
}

export interface ProxyResult {
  endpoint: Endpoint;
  status: number;
  usage: Usage | undefined;
  ok: boolean;
  /** Arrival -> upstream request sent (ms). */
  overheadMs: number;
  /** Arrival -> first response byte (ms); undefined when no byte came. */
  ttftMs: number | undefined;
  /** Arrival -> response finished (ms). */
  durationMs: number;
  /** Fallback endpoints tried after connection refusals. */
  retries: number;
}

/** Optional per-request extras of {@link proxyRequest} (observability). */
export interface ProxyExtras {
  /** Predicted cache status, the `cache_status` label of the latency histograms. */
  cacheStatus?: CacheStatusLabel;
  /** The request's logger (carries its request id). */
  log?: Logger;
  /** For SSE responses: text written after the upstream stream ended, before the response ends. */
  sseTrailer?: (info: { endpoint: Endpoint; usage: Usage | undefined; ttftMs: number | undefined }) => string | undefined;
}

export async function proxyRequest(
  deps: ProxyDeps,
  ireq: InferenceRequest,
  result: SchedulingResult,
  raw: Buffer,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  extraHeaders: Record<string, string>,
  extras: ProxyExtras = {},
): Promise<ProxyResult> {
  const { scheduler, clock, metrics } = deps;
  const cacheStatus = extras.cacheStatus ?? 'unknown';
  const log = extras.log;
  const abort = new AbortController();
  let finished = false;
  const onClose = () => {
    if (!finished) abort.abort();
  };
  res.on('close', onClose);

  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  headers['content-type'] = 'application/json';
  headers['x-request-id'] = ireq.id;

  let i = 0;
  let ep = result.ranked[0];
  let upstream: Dispatcher.ResponseData;
  metrics.inflight.inc({ endpoint: ep.id });
  for (;;) {
    try {
      upstream = await request(ep.url + path, {
        method: 'POST',
        headers,
        body: raw,
        dispatcher: deps.dispatcher,
        signal: abort.signal,
        headersTimeout: deps.upstreamTimeoutMs,
        bodyTimeout: deps.upstreamTimeoutMs,
      });
      break;
    } catch (err) {
      const refused = isConnectError(err);
      metrics.upstreamErrors.inc({ endpoint: ep.id, kind: refused ? 'connect' : abort.signal.aborted ? 'client-abort' : 'request' });
      if (refused) deps.onEndpointDown?.(ep);
      if (refused && i + 1 < result.ranked.length && !abort.signal.aborted) {
        const next = result.ranked[++i];
        log?.warn({ endpoint: ep.id, next: next.id }, 'endpoint refused the connection; retrying on the next candidate');
        metrics.retries.inc({ endpoint: ep.id });
        metrics.inflight.dec({ endpoint: ep.id });
        metrics.inflight.inc({ endpoint: next.id });
        scheduler.reassign(ireq, ep, next);
        ep = next;
        continue;
      }
      finished = true;
      res.off('close', onClose);
      metrics.inflight.dec({ endpoint: ep.id });
      scheduler.onComplete(ireq, ep, { ok: false, status: 0 });
      if (!abort.signal.aborted) log?.warn({ endpoint: ep.id, err: (err as Error).message }, 'upstream request failed');
      if (refused) throw new KvrError('KVR_ERR_NO_ENDPOINT', `no endpoint accepted the connection (last tried ${ep.id}); check that the model servers are up`, { cause: err });
      const timeout = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT';
      throw new KvrError(timeout ? 'KVR_ERR_UPSTREAM_TIMEOUT' : 'KVR_ERR_UPSTREAM', `endpoint ${ep.id} failed: ${(err as Error).message}`, { cause: err });
    }
  }

  const overheadMs = Math.max(0, clock.now() - ireq.arrivedAt);
  metrics.routerOverhead.observe(overheadMs / 1000);
  const outHeaders: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v !== undefined && !DROP_RESPONSE.has(k)) outHeaders[k] = v;
  }
  Object.assign(outHeaders, extraHeaders, { 'x-kvroute-endpoint': ep.id, 'x-session-token': sessionTokenFor(ep.id) });
  const contentType = String(upstream.headers['content-type'] ?? '');
  const sse = contentType.includes('text/event-stream');
  const sniffer = new UsageSniffer(contentType);
  const ok2xx = upstream.statusCode >= 200 && upstream.statusCode < 300;
  let firstByte = false;
  let ttftMs: number | undefined;
  let ok = false;
  let usage: Usage | undefined;
  try {
    res.writeHead(upstream.statusCode, outHeaders);
    res.flushHeaders();
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      if (!firstByte) {
        firstByte = true;
        ttftMs = clock.now() - ireq.arrivedAt;
        metrics.ttft.observe({ endpoint: ep.id, cache_status: cacheStatus }, ttftMs / 1000);
        scheduler.onFirstToken(ireq, ep);
      }
      sniffer.push(chunk);
      if (!res.write(chunk)) await once(res, 'drain', { signal: abort.signal });
    }
    ok = ok2xx;
    usage = ok ? sniffer.usage() : undefined;
    const trailer = sse && extras.sseTrailer ? extras.sseTrailer({ endpoint: ep, usage, ttftMs }) : undefined;
    if (trailer) res.end(trailer);
    else res.end();
  } catch (err) {
    if (!abort.signal.aborted) {
      metrics.upstreamErrors.inc({ endpoint: ep.id, kind: 'midstream' });
      log?.warn({ endpoint: ep.id, err: (err as Error).message }, 'endpoint failed mid-response');
      if (sse && !res.writableEnded && !res.destroyed) {
        const e = new KvrError('KVR_ERR_UPSTREAM', `endpoint ${ep.id} failed mid-stream: ${(err as Error).message}; retry the request`);
        res.end(`data: ${JSON.stringify(e.toOpenAI())}\n\n`);
      } else {
        res.destroy();
      }
    }
  } finally {
    finished = true;
    res.off('close', onClose);
    metrics.inflight.dec({ endpoint: ep.id });
  }
  scheduler.onComplete(ireq, ep, {
    ok,
    status: upstream.statusCode,
    promptTokens: usage?.promptTokens,
    cachedTokens: usage?.cachedTokens,
    completionTokens: usage?.completionTokens,
  });
  if (usage?.promptTokens !== undefined) metrics.promptTokens.inc({ endpoint: ep.id }, usage.promptTokens);
  if (usage?.cachedTokens !== undefined) metrics.cachedTokens.inc({ endpoint: ep.id }, usage.cachedTokens);
  const durationMs = clock.now() - ireq.arrivedAt;
  metrics.e2e.observe({ endpoint: ep.id, cache_status: cacheStatus }, durationMs / 1000);
  return { endpoint: ep, status: upstream.statusCode, usage, ok, overheadMs, ttftMs, durationMs, retries: i };
}
