/**
 * The admin port (default 9090):
 *
 * | path                | what |
 * |---------------------|------|
 * | `/metrics`          | Prometheus exposition of {@link RouterMetrics} |
 * | `/healthz`          | liveness |
 * | `/readyz`           | readiness: 200 when at least one endpoint is healthy, else 503 |
 * | `/` , `/dashboard`  | the live dashboard (self-contained HTML polling `/api/dashboard`) |
 * | `/api/dashboard`    | the dashboard's JSON ({@link DashboardData}) |
 * | `/debug/decisions`  | recent decisions with per-scorer scores; filters `?limit=&endpoint=&reason=&status=&cache=&model=&requestId=` |
 * | `/debug/stats`      | config summary, endpoints, KV-event ingest and index stats (what `kvroute doctor` reads) |
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { EndpointPool } from '../../datalayer/endpoint-pool.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import type { DecisionRecord } from '../openai/gateway.js';
import { DASHBOARD_HTML } from './dashboard-page.js';
import { DashboardRecorder } from './dashboard-state.js';
import { decisionJson, filterDecisions, parseDecisionFilter } from './decision-json.js';
import type { RouterSummary } from './router-summary.js';

export interface AdminOptions {
  pool: EndpointPool;
  metrics: RouterMetrics;
  decisions: () => readonly DecisionRecord[];
  clock?: Clock;
  /** Feeds the dashboard (routed counts, time series); without it the dashboard shows no history. */
  recorder?: DashboardRecorder;
  /** The router's configuration summary (`/debug/stats`, dashboard header). */
  summary?: () => RouterSummary;
  /** Requests in flight through the router per endpoint (default: 0). */
  inflight?: (ep: Endpoint) => number;
}

const ROUTES = '/metrics /healthz /readyz / /dashboard /api/dashboard /debug/decisions /debug/stats';

function json(res: ServerResponse, status: number, obj: unknown): void {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) }).end(body);
}

export function createAdminHandler(opts: AdminOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const clock = opts.clock ?? systemClock;
  const recorder = opts.recorder ?? new DashboardRecorder({ clock });
  const inflight = opts.inflight ?? (() => 0);
  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request URL\n');
      return;
    }
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('admin endpoints take GET\n');
      return;
    }
    switch (path) {
      case '/metrics':
        opts.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
        );
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        return;
      case '/readyz': {
        const healthy = opts.pool.healthyCount();
        json(res, healthy > 0 ? 200 : 503, {
          ready: healthy > 0,
          healthy,
          ...(opts.pool.unhealthyReasons() ? { reasons: opts.pool.unhealthyReasons() } : {}),
          endpoints: opts.pool.all().map((ep) => ({
            id: ep.id,
            healthy: ep.healthy,
            engine: ep.engine,
            engineSource: ep.health?.engineSource,
            live: ep.health?.live,
            loadFresh: ep.health?.loadFresh,
            reason: ep.health?.reason ?? '',
            restarts: ep.health?.restarts ?? 0,
            cacheModel: ep.cacheModel,
            models: ep.models,
            metrics: ep.metrics,
          })),
        });
        return;
      }
      case '/':
      case '/dashboard':
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        }).end(DASHBOARD_HTML);
        return;
      case '/api/dashboard':
        json(
          res,
          200,
          recorder.snapshot({
            endpoints: opts.pool.all(),
            inflight,
            decisions: opts.decisions(),
            router: opts.summary?.(),
            events: opts.metrics.eventStats(),
            index: opts.metrics.indexStats(),
          }),
        );
        return;
      case '/debug/decisions': {
        const f = parseDecisionFilter(url.searchParams);
        if (typeof f === 'string') {
          json(res, 400, { error: f });
          return;
        }
        json(res, 200, filterDecisions(opts.decisions(), f).map(decisionJson));
        return;
      }
      case '/debug/stats':
        json(res, 200, {
          now: clock.now(),
          router: opts.summary?.() ?? null,
          endpoints: opts.pool.all().map((ep) => ({
            id: ep.id,
            url: ep.url,
            address: ep.address,
            healthy: ep.healthy,
            engine: ep.engine,
            engineSource: ep.health?.engineSource,
            reason: ep.health?.reason ?? '',
            loadFresh: ep.health?.loadFresh,
            restarts: ep.health?.restarts ?? 0,
            models: ep.models,
            metrics: ep.metrics,
            routed: recorder.routed(ep.id),
            inflight: inflight(ep),
          })),
          events: opts.metrics.eventStats() ?? null,
          index: opts.metrics.indexStats() ?? null,
          preciseScorer: opts.metrics.preciseScorerStats() ?? null,
          sessions: opts.metrics.sessionCount() ?? null,
        });
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`admin endpoints: ${ROUTES}\n`);
    }
  };
}
