/**
 * The OpenAI-compatible gateway: routes `/v1/completions` and `/v1/chat/completions` through
 * the scheduler to an endpoint, answers `/v1/models` from the endpoints' own lists, and turns
 * every failure into an OpenAI-shaped error body. A bad request never throws out of here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import { KvrError, toKvrError } from '../../core/errors.js';
import type { ApiKind } from '../../core/request.js';
import type { EndpointPool } from '../../datalayer/endpoint-pool.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import type { Scheduler, SchedulingResult } from '../../scheduling/types.js';
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
  cachedTokens?: number;
  promptTokens?: number;
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

  async function handleInference(api: ApiKind, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedAt = clock.now();
    const idHeader = req.headers['x-request-id'];
    const id = typeof idHeader === 'string' && idHeader.length > 0 && idHeader.length <= 128 ? idHeader : randomUUID();
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
      throw new KvrError('KVR_ERR_NO_ENDPOINT', `no healthy endpoint serves "${ireq.model}" right now (${pool.healthyCount()}/${pool.all().length} healthy); check the model servers and their /metrics`);
    }
    const result = await scheduler.schedule(ireq, candidates);
    metrics.schedulingDuration.observe(result.durationMs / 1000);
    logger.debug({ requestId: id, endpoint: result.endpoint.id, reason: result.reason, candidates: result.candidates }, 'scheduled');
    const out = await proxyRequest(opts, ireq, result, raw, path, req, res, { 'x-request-id': id });
    metrics.requests.inc({ endpoint: out.endpoint.id, model: ireq.model, status: String(out.status), reason: result.reason });
    opts.onDecision?.({
      requestId: id,
      model: ireq.model,
      at: arrivedAt,
      result,
      servedBy: out.endpoint.id,
      status: out.status,
      cachedTokens: out.usage?.cachedTokens,
      promptTokens: out.usage?.promptTokens,
    });
  }

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const api = ROUTES[path];
    const fail = (err: unknown) => {
      const e = toKvrError(err);
      metrics.badRequests.inc({ code: e.code });
      if (e.code === 'KVR_ERR_INTERNAL') logger.error({ err }, 'internal error');
      else logger.debug({ code: e.code, msg: e.message }, 'request rejected');
      sendError(res, e);
    };
    if (api) {
      if (req.method !== 'POST') return fail(new KvrError('KVR_ERR_METHOD_NOT_ALLOWED', `${path} takes POST`));
      handleInference(api, path, req, res).catch(fail);
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
