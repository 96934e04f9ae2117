/**
 * Every metric the router exports, defined in this one file (Prometheus conventions: base
 * units, `_total` counters, `_seconds` durations). A {@link RouterMetrics} owns its own
 * prom-client Registry, so several routers (tests, bench) can live in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets (seconds) from 1 ms to 60 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Scheduling-time buckets (seconds) from 10 µs to 100 ms. */
const SCHED_BUCKETS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1];

export class RouterMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'kvroute_requests_total',
    help: 'Requests handled by the gateway, by endpoint served, model, HTTP status and decision reason.',
    labelNames: ['endpoint', 'model', 'status', 'reason'] as const,
    registers: [this.registry],
  });

  readonly schedulingDuration = new Histogram({
    name: 'kvroute_scheduling_duration_seconds',
    help: 'Time spent choosing an endpoint (filters, scorers, picker).',
    buckets: SCHED_BUCKETS,
    registers: [this.registry],
  });

  readonly routerOverhead = new Histogram({
    name: 'kvroute_router_overhead_seconds',
    help: 'Time from request arrival until the upstream request was sent (parse, schedule, connect).',
    buckets: SCHED_BUCKETS,
    registers: [this.registry],
  });

  readonly ttft = new Histogram({
    name: 'kvroute_request_ttft_seconds',
    help: 'Time to first response byte from the endpoint, as seen by the gateway.',
    labelNames: ['endpoint'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly e2e = new Histogram({
    name: 'kvroute_request_duration_seconds',
    help: 'End-to-end request duration through the gateway.',
    labelNames: ['endpoint'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'kvroute_upstream_retries_total',
    help: 'Requests re-sent to a fallback endpoint after the chosen one refused the connection.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'kvroute_upstream_errors_total',
    help: 'Upstream failures by endpoint and kind (connect, reset, timeout, midstream).',
    labelNames: ['endpoint', 'kind'] as const,
    registers: [this.registry],
  });

  readonly inflight = new Gauge({
    name: 'kvroute_inflight_requests',
    help: 'Requests in flight through the gateway, by endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly cachedTokens = new Counter({
    name: 'kvroute_engine_cached_tokens_total',
    help: 'Prompt tokens the engines reported as served from their prefix cache (usage.prompt_tokens_details.cached_tokens).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly promptTokens = new Counter({
    name: 'kvroute_engine_prompt_tokens_total',
    help: 'Prompt tokens the engines reported (usage.prompt_tokens).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly endpointHealthy = new Gauge({
    name: 'kvroute_endpoint_healthy',
    help: '1 when the endpoint is healthy (metrics fresh, accepting connections), else 0.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly endpointStaleness = new Gauge({
    name: 'kvroute_endpoint_metrics_age_seconds',
    help: 'Age of the last successful metrics scrape of the endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly scrapeErrors = new Counter({
    name: 'kvroute_endpoint_scrape_errors_total',
    help: 'Failed scrapes of an endpoint\'s /metrics.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly badRequests = new Counter({
    name: 'kvroute_rejected_requests_total',
    help: 'Requests the gateway rejected before scheduling, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'kvroute_' });
  }
}
