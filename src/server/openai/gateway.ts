/**
 * The OpenAI-compatible gateway: routes `/v1/completions` and `/v1/chat/completions` through
 * the scheduler to an endpoint, answers `/v1/models` from the endpoints' own lists, and turns
 * every failure into an OpenAI-shaped error body. A bad request never throws out of here.
 *
 * Transport only: the request's life (scheduling hooks, retries, timeouts, load, metrics, the log
 * line, client aborts as 499) is a {@link RequestLifecycle} (src/lifecycle/); this file reads
 * the HTTP request, asks the lifecycle to decide, and hands the response to proxy.ts.
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
import type { Scheduler } from '../../scheduling/types.js';
import { RequestLifecycles, type RequestLifecycle } from '../../lifecycle/request-lifecycle.js';
import type { OutlierDetector } from '../../lifecycle/outlier-detector.js';
import type { RetryBudget } from '../../lifecycle/retry-budget.js';
import type { DecisionRecord } from '../../lifecycle/types.js';
import {
  EXPLAIN_HEADER, buildExplanation, encodeExplanation, explainRequested, sseExplainComment,
} from '../../observability/decision-explanation.js';
import { buildInferenceRequest, knownModels, readBody } from './parse-request.js';
import { tenantLogFields } from '../http/public-guard.js';
import { proxyRequest, type ProxyDeps } from './proxy.js';

export type { DecisionRecord } from '../../lifecycle/types.js';

export interface GatewayOptions extends ProxyDeps {
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
  /**
   * The lifecycles of this router (shared with other front ends). Default: built from the
   * options here (scheduler, clock, metrics, logger, onDecision, outliers, retryBudget, timeouts).
   */
  lifecycles?: RequestLifecycles;
  outliers?: OutlierDetector;
  retryBudget?: RetryBudget;
  /** Retries on other replicas per request (default 2). */
  maxRetries?: number;
  /** Dispatch -> first token per attempt (ms, 0 = none). */
  ttfbTimeoutMs?: number;
}

const ROUTES: Record<string, ApiKind> = { '/v1/completions': 'completions', '/v1/chat/completions': 'chat' };

/** Sends `err` as an OpenAI error body (with `x-request-id` when `requestId` is given); destroys the response once headers went out. */
export function sendError(res: ServerResponse, err: KvrError, requestId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(err.toOpenAI());
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  res.writeHead(err.status, headers);
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

/**
 * {@link knownModels} of the pool, recomputed only when an endpoint was added or removed or
 * reported a new list (the scraper replaces `ep.models`, never edits it in place).
 */
class KnownModelsMemo {
  readonly #pool: EndpointPool;
  #eps: readonly { models: readonly string[] }[] | undefined;
  #lists: Array<readonly string[]> = [];
  #value: string[] | undefined;

  constructor(pool: EndpointPool) {
    this.#pool = pool;
  }

  get(): string[] | undefined {
    const eps = this.#pool.all();
    let same = eps === this.#eps && eps.length === this.#lists.length;
    for (let i = 0; same && i < eps.length; i++) same = eps[i].models === this.#lists[i];
    if (!same) {
      this.#eps = eps;
      this.#lists = eps.map((e) => e.models);
      this.#value = knownModels(this.#pool);
    }
    return this.#value;
  }
}

/** Returns the request handler of the gateway's HTTP server. */
export function createGatewayHandler(opts: GatewayOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { pool, clock, metrics, logger } = opts;
  const lifecycles =
    opts.lifecycles ??
    new RequestLifecycles({
      scheduler: opts.scheduler,
      clock,
      metrics,
      logger,
      onDecision: opts.onDecision,
      outliers: opts.outliers,
      retryBudget: opts.retryBudget,
      maxRetries: opts.maxRetries,
      upstreamTimeoutMs: opts.upstreamTimeoutMs,
      ttfbTimeoutMs: opts.ttfbTimeoutMs,
    });

  const models = new KnownModelsMemo(pool);

  async function handleInference(lc: RequestLifecycle, api: ApiKind, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await lc.run('body', readBody(req, opts.maxBodyBytes));
    const headers: Record<string, string | undefined> = {};
    const inHeaders = req.headers;
    for (const k in inHeaders) {
      const v = inHeaders[k];
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const ireq = buildInferenceRequest(api, raw, headers, {
      id: lc.id,
      clientIp: clientAddress(req, opts.trustForwardedFor),
      arrivedAt: lc.arrivedAt,
      defaultMaxTokens: api === 'chat' ? 64 : 16,
      models: models.get(),
    });
    if (!pool.servesModel(ireq.model)) {
      throw new KvrError('KVR_ERR_UNKNOWN_MODEL', `model "${ireq.model}" is not served here; available: ${pool.models().join(', ') || '(none reported)'}`, { param: 'model' });
    }
    const candidates = pool.candidatesFor(ireq.model);
    if (candidates.length === 0) {
      throw new KvrError('KVR_ERR_NO_ENDPOINT', `no healthy endpoint serves "${ireq.model}" right now (${pool.healthyCount()}/${pool.all().length} healthy${pool.unhealthyReasons() ? `: ${pool.unhealthyReasons()}` : ''}); check the model servers (GET /readyz on the admin port lists each endpoint's state)`);
    }
    const { result, prediction } = await lc.decide(ireq, candidates);
    if (lc.logLevelEnabled('debug')) lc.log.debug({ endpoint: result.endpoint.id, reason: result.reason, cache: prediction.cacheStatus, candidates: result.candidates }, 'scheduled');
    const extra: Record<string, string> = { 'x-request-id': lc.id };
    const explainN = explainRequested(headers[EXPLAIN_HEADER]);
    if (explainN > 0) extra[EXPLAIN_HEADER] = encodeExplanation(buildExplanation(result, prediction, explainN));
    await proxyRequest(opts, lc, ireq, raw, path, req, res, extra, {
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
    if (!lc.ended) lc.reject(new KvrError('KVR_ERR_INTERNAL', 'the proxy returned without ending the request'));
    if (lc.error !== undefined && lc.outcome !== 'aborted' && !res.headersSent) sendError(res, lc.error, lc.id);
  }

  /** Ends a request the gateway refused (no lifecycle: wrong method, unknown route). */
  const fail = (req: IncomingMessage, res: ServerResponse, path: string, arrivedAt: number, log: Logger, err: unknown): void => {
    const e = toKvrError(err);
    metrics.badRequests.inc({ code: e.code });
    if (e.code === 'KVR_ERR_INTERNAL') log.error({ err }, 'internal error');
    log.info({ method: req.method, path, status: e.status, code: e.code, msg: e.message, durationMs: round1(clock.now() - arrivedAt) }, 'request failed');
    sendError(res, e);
  };

  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const api = ROUTES[path];
    const arrivedAt = clock.now();
    const id = requestIdOf(req);
    // The request's logger is made when something logs (a pino child serializes its bindings).
    const log = (): Logger => logger.child({ reqId: id, ...tenantLogFields(req) });
    if (api && req.method === 'POST') {
      // x-request-id goes out with the answer's headers (or the error's): no setHeader, whose
      // header list would make writeHead merge header by header.
      const lc = lifecycles.begin({ id, arrivedAt, log });
      res.once('close', () => {
        if (!res.writableFinished) lc.abort('client closed the connection');
      });
      handleInference(lc, api, path, req, res).catch((err: unknown) => {
        if (lc.outcome === 'aborted') return;
        sendError(res, lc.reject(err), id);
      });
      return;
    }
    if (api) {
      if (!res.headersSent) res.setHeader('x-request-id', id);
      return fail(req, res, path, arrivedAt, log(), new KvrError('KVR_ERR_METHOD_NOT_ALLOWED', `${path} takes POST`));
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
    fail(req, res, path, arrivedAt, log(), new KvrError('KVR_ERR_NOT_FOUND', `no route ${req.method} ${path}; the gateway serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health`));
  };
}
