/**
 * The OpenAI-compatible gateway: routes `/v1/completions` and `/v1/chat/completions` through
 * the scheduler to an endpoint, answers `/v1/models` from the endpoints' own lists, and turns
 * every failure into an OpenAI-shaped error body. A bad request never throws out of here.
 *
 * Observability: every request has an id (`x-request-id` when the client sent a sane one, else
 * a UUID) echoed in the response and carried by every log line of the request; one `info` line
 * per request (endpoint, status, reason, predicted cache status, durations); metrics by
 * predicted cache status and per-scorer scores; `x-kvroute-explain: 1` returns the decision
 * (src/observability/decision-explanation.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { KvrError, toKvrError } from '../../core/errors.js';
import type { ApiKind } from '../../core/request.js';
import type { EndpointPool } from '../../datalayer/endpoint-pool.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import type { CacheStatusLabel } from '../../metrics/router-metrics.js';
import type { Scheduler, SchedulingResult } from '../../scheduling/types.js';
import { predictCache, promptTokensOf, scorerTypesOf } from '../../observability/cache-prediction.js';
import {
  EXPLAIN_HEADER, buildExplanation, encodeExplanation, explainRequested, sseExplainComment,
} from '../../observability/decision-explanation.js';
import { buildInferenceRequest, readBody } from './parse-request.js';
import { proxyRequest, type ProxyDeps } from './proxy.js';

export interface GatewayOptions extends Omit<ProxyDeps, 'scheduler' | 'clock' | 'metrics'> {
  pool: EndpointPool;
  scheduler: Scheduler;
  clock: Clock;
  metrics: RouterMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Use the first X-Forwarded-For address as the client address (behind a trusted proxy). */
  trustForwardedFor: boolean;
  /** Called after each routed request (explanations, dashboards, tests). */
  onDecision?: (d: DecisionRecord) => void;
}

/** What the gateway remembers of a routed request. */
export interface DecisionRecord {
  requestId: string;
  model: string;
  at: number;
  result: SchedulingResult;
  servedBy: string;
  status: number;
  /** Engine-reported cached prompt tokens (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens?: number;
  /** Engine-reported prompt tokens (usage.prompt_tokens). */
  promptTokens?: number;
  /** Predicted cache status of the chosen endpoint (hit / partial / miss / unknown). */
  cacheStatus?: CacheStatusLabel;
  /** Prompt tokens the router predicted cached on the chosen endpoint. */
  predictedCachedTokens?: number;
  /** Prompt tokens as the router counted them (exact when tokenized, else estimated). */
  routerPromptTokens?: number;
  /** Arrival -> first response byte (ms). */
  ttftMs?: number;
  /** Arrival -> response finished (ms). */
  durationMs?: number;
  /** Arrival -> upstream request sent (ms). */
  overheadMs?: number;
}

const ROUTES: Record<string, ApiKind> = { '/v1/completions': 'completions', '/v1/chat/completions': 'chat' };

export function sendError(res: ServerResponse, err: KvrError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toOpenAI());
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, obj: unknown): void {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const round1 = (ms: number) => Math.round(ms * 10) / 10;

/** The request id: the client's `x-request-id` when it is 1..128 printable ASCII characters, else a UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && h.length > 0 && h.length <= 128 && /^[\x21-\x7e]+$/.test(h) ? h : randomUUID();
}

function clientAddress(req: IncomingMessage, trustXff: boolean): string {
  if (trustXff) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/** Returns the request handler of the gateway's HTTP server. */
export function createGatewayHandler(opts: GatewayOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { pool, scheduler, clock, metrics, logger } = opts;
  const scorerTypes = scorerTypesOf(scheduler);

  async function handleInference(api: ApiKind, path: string, req: IncomingMessage, res: ServerResponse, id: string, log: Logger, arrivedAt: number): Promise<void> {
    const raw = await readBody(req, opts.maxBodyBytes);
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const ireq = buildInferenceRequest(api, raw, headers, {
      id,
      clientIp: clientAddress(req, opts.trustForwardedFor),
      arrivedAt,
      defaultMaxTokens: api === 'chat' ? 64 : 16,
    });
    if (!pool.servesModel(ireq.model)) {
      throw new KvrError('KVR_ERR_UNKNOWN_MODEL', `model "${ireq.model}" is not served here; available: ${pool.models().join(', ') || '(none reported)'}`, { param: 'model' });
    }
    const candidates = pool.candidatesFor(ireq.model);
    if (candidates.length === 0) {
      throw new KvrError('KVR_ERR_NO_ENDPOINT', `no healthy endpoint serves "${ireq.model}" right now (${pool.healthyCount()}/${pool.all().length} healthy${pool.unhealthyReasons() ? `: ${pool.unhealthyReasons()}` : ''}); check the model servers (GET /readyz on the admin port lists each endpoint's state)`);
    }
    const result = await scheduler.schedule(ireq, candidates);
    metrics.schedulingDuration.observe(result.durationMs / 1000);
    const prediction = predictCache(result, scorerTypes, promptTokensOf(ireq), ireq);
    observeDecision(result, prediction.cacheStatus);
    log.debug({ endpoint: result.endpoint.id, reason: result.reason, cache: prediction.cacheStatus, candidates: result.candidates }, 'scheduled');
    const extra: Record<string, string> = { 'x-request-id': id };
    const explainN = explainRequested(headers[EXPLAIN_HEADER]);
    if (explainN > 0) extra[EXPLAIN_HEADER] = encodeExplanation(buildExplanation(result, prediction, explainN));
    const out = await proxyRequest(opts, ireq, result, raw, path, req, res, extra, {
      cacheStatus: prediction.cacheStatus,
      log,
      sseTrailer:
        explainN > 0
          ? ({ endpoint, usage, ttftMs }) =>
              sseExplainComment({
                servedBy: endpoint.id,
                chosen: result.endpoint.id,
                cache: prediction.cacheStatus,
                predictedCachedTokens: prediction.predictedCachedTokens ?? null,
                cachedTokens: usage?.cachedTokens ?? null,
                promptTokens: usage?.promptTokens ?? null,
                ttftMs: ttftMs === undefined ? null : Math.round(ttftMs * 10) / 10,
              })
          : undefined,
    });
    metrics.requests.inc({ endpoint: out.endpoint.id, model: ireq.model, status: String(out.status), reason: result.reason });
    if (out.ok && prediction.predictedCachedTokens !== undefined) {
      metrics.predictedCachedTokens.inc({ endpoint: out.endpoint.id }, prediction.predictedCachedTokens);
      const engineCached = out.usage?.cachedTokens;
      const engineTotal = out.usage?.promptTokens;
      if (engineCached !== undefined && engineTotal !== undefined && engineTotal > 0) {
        const predictedFraction = prediction.predictedCachedTokens / Math.max(1, prediction.promptTokens);
        metrics.predictionError.observe(Math.max(-1, Math.min(1, engineCached / engineTotal - predictedFraction)));
      }
    }
    log.info(
      {
        model: ireq.model,
        endpoint: out.endpoint.id,
        status: out.status,
        reason: result.reason,
        cache: prediction.cacheStatus,
        predictedCachedTokens: prediction.predictedCachedTokens,
        cachedTokens: out.usage?.cachedTokens,
        promptTokens: out.usage?.promptTokens,
        stream: ireq.stream,
        retries: out.retries,
        schedulingMs: round1(result.durationMs),
        overheadMs: round1(out.overheadMs),
        ttftMs: out.ttftMs === undefined ? undefined : round1(out.ttftMs),
        durationMs: round1(out.durationMs),
      },
      'request',
    );
    opts.onDecision?.({
      requestId: id,
      model: ireq.model,
      at: arrivedAt,
      result,
      servedBy: out.endpoint.id,
      status: out.status,
      cachedTokens: out.usage?.cachedTokens,
      promptTokens: out.usage?.promptTokens,
      cacheStatus: prediction.cacheStatus,
      predictedCachedTokens: prediction.predictedCachedTokens,
      routerPromptTokens: prediction.promptTokens,
      ttftMs: out.ttftMs,
      durationMs: out.durationMs,
      overheadMs: out.overheadMs,
    });
  }

  /** Per-decision metrics: cache status x reason, and the explained candidates' raw scores. */
  function observeDecision(result: SchedulingResult, cacheStatus: CacheStatusLabel): void {
    metrics.decisionsByCacheStatus.inc({ cache_status: cacheStatus, reason: result.reason });
    for (const c of result.candidates) {
      const candidate = c.endpointId === result.endpoint.id ? 'chosen' : 'other';
      for (const name in c.scores) {
        const v = c.scores[name];
        if (Number.isFinite(v)) metrics.scorerScore.observe({ scorer: name, type: scorerTypes.get(name) ?? 'unknown', candidate }, v);
      }
    }
  }

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const api = ROUTES[path];
    const arrivedAt = clock.now();
    const id = requestIdOf(req);
    const log = logger.child({ reqId: id });
    const fail = (err: unknown) => {
      const e = toKvrError(err);
      metrics.badRequests.inc({ code: e.code });
      if (e.code === 'KVR_ERR_INTERNAL') log.error({ err }, 'internal error');
      log.info({ method: req.method, path, status: e.status, code: e.code, msg: e.message, durationMs: round1(clock.now() - arrivedAt) }, 'request failed');
      sendError(res, e);
    };
    if (api) {
      if (!res.headersSent) res.setHeader('x-request-id', id);
      if (req.method !== 'POST') return fail(new KvrError('KVR_ERR_METHOD_NOT_ALLOWED', `${path} takes POST`));
      handleInference(api, path, req, res, id, log, arrivedAt).catch(fail);
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      const created = Math.floor(clock.now() / 1000);
      return sendJson(res, 200, { object: 'list', data: pool.models().map((id) => ({ id, object: 'model', created, owned_by: 'kvroute' })) });
    }
    if (req.method === 'GET' && path === '/health') {
      const healthy = pool.healthyCount() > 0;
      res.writeHead(healthy ? 200 : 503).end();
      return;
    }
    fail(new KvrError('KVR_ERR_NOT_FOUND', `no route ${req.method} ${path}; the gateway serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health`));
  };
}
