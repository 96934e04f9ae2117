/**
 * The admin port (default 9090): Prometheus `/metrics`, liveness `/healthz`, readiness
 * `/readyz` (ready when at least one endpoint is healthy), and `/debug/decisions` (the last
 * routing decisions with per-scorer scores).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointPool } from '../../datalayer/endpoint-pool.js';
import type { RouterMetrics } from '../../metrics/router-metrics.js';
import type { DecisionRecord } from '../openai/gateway.js';

export interface AdminOptions {
  pool: EndpointPool;
  metrics: RouterMetrics;
  decisions: () => readonly DecisionRecord[];
}

export function createAdminHandler(opts: AdminOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
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
        const body = JSON.stringify({
          ready: healthy > 0,
          healthy,
          endpoints: opts.pool.all().map((ep) => ({ id: ep.id, healthy: ep.healthy, models: ep.models, metrics: ep.metrics })),
        });
        res.writeHead(healthy > 0 ? 200 : 503, { 'content-type': 'application/json' }).end(body);
        return;
      }
      case '/debug/decisions':
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify(
            opts.decisions().map((d) => ({
              requestId: d.requestId,
              model: d.model,
              at: d.at,
              servedBy: d.servedBy,
              status: d.status,
              reason: d.result.reason,
              profile: d.result.profile,
              schedulingMs: d.result.durationMs,
              cachedTokens: d.cachedTokens,
              promptTokens: d.promptTokens,
              candidates: d.result.candidates,
            })),
          ),
        );
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('admin endpoints: /metrics /healthz /readyz /debug/decisions\n');
    }
  };
}
