/**
 * Every metric the router exports, defined in this one file (Prometheus conventions: base
 * units, `_total` counters, `_seconds` durations). A {@link RouterMetrics} owns its own
 * prom-client Registry, so several routers (tests, bench) can live in one process.
 *
 * Two kinds of metrics live here:
 * - observed by the request path (gateway, proxy, scraper, tokenizer) as things happen;
 * - read at scrape time from providers other parts attach ({@link RouterMetrics.attachEventStats},
 *   {@link RouterMetrics.attachIndexStats}, {@link RouterMetrics.attachSessionCount},
 *   {@link RouterMetrics.attachPreciseScorerStats}). A provider that is not attached simply
 *   exports nothing; a provider that throws is skipped for that scrape.
 *
 * The full table is in docs/observability.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../core/clock.js';
import type { EventIngestStats } from '../events/types.js';
import type { IndexStats } from '../kv-index/types.js';
import { FastChildren } from './fast-children.js';

/** Latency buckets (seconds) from 1 ms to 60 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Scheduling-time buckets (seconds) from 10 µs to 100 ms. */
const SCHED_BUCKETS = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1];
/** Score buckets: scores are in [0, 1]. */
const SCORE_BUCKETS = [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1];
/** Prediction error buckets: (engine cached - predicted) / prompt tokens, in [-1, 1]. */
const ERROR_BUCKETS = [-1, -0.75, -0.5, -0.25, -0.1, -0.01, 0.01, 0.1, 0.25, 0.5, 0.75, 1];
/** Most unknown-topic label values exported (bounded cardinality). */
const MAX_TOPIC_LABELS = 20;

/** Predicted cache status of a request (see src/observability/cache-prediction.ts). */
export type CacheStatusLabel = 'hit' | 'partial' | 'miss' | 'unknown';

/** Counters of the precise prefix scorer, as its `stats()` returns them (subset read here). */
export interface PreciseScorerStatsLike {
  precise: number;
  fallbacks: Record<string, number>;
  speculativeHits: number;
  speculativeEntries: number;
}

/** Counters of the router's tokenizer, as its `stats()` returns them (subset read here). */
export interface TokenizerStatsLike {
  queueFull: number;
  aborted: number;
  workerFallbacks: number;
  workers?: { queued: number; running: number; cancelledQueued: number; cancelledRunning: number };
  fastBpe?: { pieceHits: number; pieceMisses: number; fallbacks: number };
}

/** Scrape-time providers; each is optional. */
interface Providers {
  tokenizer?: () => TokenizerStatsLike;
  events?: () => EventIngestStats;
  index?: () => IndexStats;
  sessions?: () => number;
  precise?: () => PreciseScorerStatsLike;
}

/** Calls a provider, returning undefined when absent or when it throws. */
function read<T>(p: (() => T) | undefined): T | undefined {
  if (p === undefined) return undefined;
  try {
    return p();
  } catch {
    return undefined;
  }
}

export class RouterMetrics {
  readonly registry = new Registry();
  /** Cached bound children for the per-request path (`fast.histogram(m, ...labelValues)`). */
  readonly fast = new FastChildren();
  readonly #providers: Providers = {};
  readonly #clock: Clock;

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
    help: 'Time to first response byte from the endpoint, as seen by the gateway, by endpoint and predicted cache status (hit, partial, miss, unknown).',
    labelNames: ['endpoint', 'cache_status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly e2e = new Histogram({
    name: 'kvroute_request_duration_seconds',
    help: 'End-to-end request duration through the gateway, by endpoint and predicted cache status.',
    labelNames: ['endpoint', 'cache_status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly retries = new Counter({
    name: 'kvroute_upstream_retries_total',
    help: 'Requests re-sent to another endpoint after the one tried failed before any byte reached the client (refused, reset, 5xx, time-to-first-byte timeout), by the endpoint that failed.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'kvroute_upstream_errors_total',
    help: 'Upstream failures by endpoint and kind (connect, reset, status, ttfb-timeout, timeout, midstream, request).',
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

  readonly predictedCachedTokens = new Counter({
    name: 'kvroute_predicted_cached_tokens_total',
    help: 'Prompt tokens the router predicted to be cached on the endpoint it chose (max prefix-scorer score x prompt tokens).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly predictionError = new Histogram({
    name: 'kvroute_cache_prediction_error_ratio',
    help: '(engine-reported cached tokens - predicted cached tokens) / prompt tokens, per request with usage; > 0: the router under-predicted.',
    buckets: ERROR_BUCKETS,
    registers: [this.registry],
  });

  readonly decisionsByCacheStatus = new Counter({
    name: 'kvroute_decisions_total',
    help: 'Scheduling decisions by predicted cache status of the chosen endpoint and decision reason.',
    labelNames: ['cache_status', 'reason'] as const,
    registers: [this.registry],
  });

  readonly scorerScore = new Histogram({
    name: 'kvroute_scorer_score',
    help: 'Raw per-scorer scores (0..1) of the chosen endpoint (candidate="chosen") and of the other explained candidates (candidate="other").',
    labelNames: ['scorer', 'type', 'candidate'] as const,
    buckets: SCORE_BUCKETS,
    registers: [this.registry],
  });

  readonly tokenizationDuration = new Histogram({
    name: 'kvroute_tokenization_duration_seconds',
    help: 'Time spent tokenizing a request for precise prefix routing.',
    buckets: SCHED_BUCKETS,
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

  readonly endpointLive = new Gauge({
    name: 'kvroute_endpoint_live',
    help: '1 while the endpoint answers /health (or /metrics) within the liveness bound, else 0.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly endpointLoadFresh = new Gauge({
    name: 'kvroute_endpoint_load_fresh',
    help: '1 while the endpoint\'s load metrics are fresh; 0 while they are stale (load scorers treat it as unknown).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly endpointRestarts = new Counter({
    name: 'kvroute_endpoint_restarts_total',
    help: 'Restarts of an endpoint the scraper detected (its cache predictions were dropped), by how it was seen.',
    labelNames: ['endpoint', 'reason'] as const,
    registers: [this.registry],
  });

  readonly endpointEngine = new Gauge({
    name: 'kvroute_endpoint_engine_info',
    help: 'Engine of each endpoint (value 1): engine kind and whether it was detected or given (--engine).',
    labelNames: ['endpoint', 'engine', 'source'] as const,
    registers: [this.registry],
  });

  readonly scrapeCost = new Counter({
    name: 'kvroute_endpoint_scrape_cost_seconds_total',
    help: 'Router event-loop time spent reading and parsing the endpoint\'s /metrics pages (the per-endpoint cost of scraping; network wait excluded).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly scrapeBytes = new Counter({
    name: 'kvroute_endpoint_scrape_bytes_total',
    help: 'Bytes of /metrics pages read from the endpoint.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly scrapeInterval = new Gauge({
    name: 'kvroute_endpoint_scrape_interval_seconds',
    help: 'Current (adaptive) scrape interval of the endpoint: the base interval while its metrics change, backing off while they do not.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly badRequests = new Counter({
    name: 'kvroute_rejected_requests_total',
    help: 'Requests the gateway rejected before scheduling, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly clientAborts = new Counter({
    name: 'kvroute_client_aborts_total',
    help: 'Requests whose client went away before the response completed (logged and counted as status 499), by the stage they were in (body, schedule, dispatched, streaming, ...).',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });

  readonly retryBudgetExhausted = new Counter({
    name: 'kvroute_retry_budget_exhausted_total',
    help: 'Retries not made because the retry budget (share of active requests) was used up.',
    registers: [this.registry],
  });

  readonly outlierEjections = new Counter({
    name: 'kvroute_outlier_ejections_total',
    help: 'Times an endpoint was ejected by outlier detection (consecutive 5xx / gateway failures / timeouts).',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly endpointEjected = new Gauge({
    name: 'kvroute_endpoint_ejected',
    help: '1 while outlier detection keeps an endpoint out of rotation, else 0.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  // --- Prefill/decode disaggregation (src/pd, src/sidecar) ---
  readonly pdDecisions = new Counter({
    name: 'kvroute_pd_decisions_total',
    help: 'P/D decider verdicts: disaggregated (prefill endpoint chosen) or aggregated.',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });

  readonly pdPrefillRequests = new Counter({
    name: 'kvroute_pd_prefill_requests_total',
    help: 'Prefill legs by prefill endpoint and result (ok, fallback, error, aborted).',
    labelNames: ['endpoint', 'result'] as const,
    registers: [this.registry],
  });

  readonly pdPrefillFallbacks = new Counter({
    name: 'kvroute_pd_prefill_fallbacks_total',
    help: 'Requests prefilled locally on the decode endpoint because the prefill leg failed, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly pdPrefillDuration = new Histogram({
    name: 'kvroute_pd_prefill_duration_seconds',
    help: 'Prefill leg duration (request sent -> kv_transfer_params received).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly pdPrefillReleases = new Counter({
    name: 'kvroute_pd_prefill_releases_total',
    help: 'Requests to a prefill endpoint to free pinned KV blocks no decode will pull (client gone), by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly pdSsrfRejections = new Counter({
    name: 'kvroute_pd_ssrf_rejections_total',
    help: 'x-prefiller-host-port targets refused by SSRF protection (not a known prefill endpoint).',
    registers: [this.registry],
  });

  // Active-active router replicas (src/sync/router-sync.ts).
  readonly syncRecords = new Counter({
    name: 'kvroute_sync_records_total',
    help: 'Router-sync records: sent (published), applied (from other replicas), dropped (Redis down, malformed, unknown endpoint, overflow)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly syncRemoteInflight = new Gauge({
    name: 'kvroute_sync_remote_inflight',
    help: 'Requests other router replicas have in flight on the endpoint (learned from the sync stream)',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly syncLag = new Gauge({
    name: 'kvroute_sync_lag_seconds',
    help: 'Age of the newest sync-stream entry applied when it was applied',
    registers: [this.registry],
  });

  readonly syncConnected = new Gauge({
    name: 'kvroute_sync_connected',
    help: '1 while the router-sync Redis connection is up',
    registers: [this.registry],
  });

  readonly syncRemoteRouters = new Gauge({
    name: 'kvroute_sync_remote_routers',
    help: 'Other router replicas heard from within the liveness window',
    registers: [this.registry],
  });

  // Public port (src/server/http/): clients refused or cut before the gateway saw a request.
  readonly clientErrors = new Counter({
    name: 'kvroute_client_errors_total',
    help: 'Connections answered or closed by the public port itself: kind = bad-request (400), headers-too-large (431), request-timeout (408), reset, connection-limit, unauthorized (401).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly openConnections = new Gauge({
    name: 'kvroute_open_connections',
    help: 'Client connections open on the public (gateway) port.',
    registers: [this.registry],
  });

  readonly tenantRequests = new Counter({
    name: 'kvroute_tenant_requests_total',
    help: 'Requests on the gateway port by API-key tenant (only with --api-key / --api-keys-file) and HTTP status.',
    labelNames: ['tenant', 'status'] as const,
    registers: [this.registry],
  });

  readonly panicRouted = new Counter({
    name: 'kvroute_panic_routing_total',
    help: 'Requests routed in panic mode: fewer than --panic-threshold-percent of the endpoints were healthy, so silent ones (probes timing out, connections accepted) were candidates too.',
    registers: [this.registry],
  });

  readonly idleGcRuns = new Counter({
    name: 'kvroute_idle_gc_total',
    help: 'Full garbage collections run after a busy period turned idle, to give the heap back (--idle-gc-after).',
    registers: [this.registry],
  });

  readonly idleGcSeconds = new Counter({
    name: 'kvroute_idle_gc_seconds_total',
    help: 'Time spent in those idle full garbage collections, seconds.',
    registers: [this.registry],
  });

  readonly idleReleasedBytes = new Counter({
    name: 'kvroute_idle_released_bytes_total',
    help: 'Resident memory given back by the idle collections and the glibc malloc_trim(0) after them (RSS before minus after, when it fell), bytes.',
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean; clock?: Clock } = {}) {
    this.#clock = opts.clock ?? systemClock;
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'kvroute_' });
    this.#defineProviderMetrics();
  }

  /** Records the time one request's tokenization took (the tokenizer calls this). */
  observeTokenization(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.tokenizationDuration.observe(seconds);
  }

  /** KV-event ingestion statistics, read at every scrape (and by the admin stats endpoint). */
  attachEventStats(provider: () => EventIngestStats): void {
    this.#providers.events = provider;
  }

  /** Block index statistics, read at every scrape. */
  attachIndexStats(provider: () => IndexStats): void {
    this.#providers.index = provider;
  }

  /** Number of live session bindings, read at every scrape. */
  attachSessionCount(provider: () => number): void {
    this.#providers.sessions = provider;
  }

  /** Counters of the precise prefix scorer (precise vs approximate fallback), read at every scrape. */
  attachPreciseScorerStats(provider: () => PreciseScorerStatsLike): void {
    this.#providers.precise = provider;
  }

  /** Counters of the router's own tokenizer (worker queue, fast BPE path), read at every scrape. */
  attachTokenizerStats(provider: () => TokenizerStatsLike): void {
    this.#providers.tokenizer = provider;
  }

  /** Current event-ingest stats, or undefined when none attached (or the provider failed). */
  eventStats(): EventIngestStats | undefined {
    return read(this.#providers.events);
  }

  /** Current index stats, or undefined when none attached. */
  indexStats(): IndexStats | undefined {
    return read(this.#providers.index);
  }

  /** Current session-binding count, or undefined when none attached. */
  sessionCount(): number | undefined {
    return read(this.#providers.sessions);
  }

  /** Current precise scorer stats, or undefined when none attached. */
  preciseScorerStats(): PreciseScorerStatsLike | undefined {
    return read(this.#providers.precise);
  }

  /** Metrics whose values come from the providers, refreshed in `collect()` at scrape time. */
  #defineProviderMetrics(): void {
    const registers = [this.registry];
    const self = this;
    // A counter mirrored from a monotonic provider value: reset, then set to the current total.
    const mirrorCounter = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (set: (labels: Partial<Record<L, string>>, v: number) => void) => void,
    ): void => {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, v) => this.inc(labels, Number.isFinite(v) && v > 0 ? v : 0));
        },
      });
    };
    const mirrorGauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (set: (labels: Partial<Record<L, string>>, v: number) => void) => void,
    ): void => {
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, v) => this.set(labels, Number.isFinite(v) ? v : 0));
        },
      });
    };
    const ev = (f: (id: string, s: EventIngestStats['endpoints'][string], set: (l: { endpoint: string }, v: number) => void) => void) =>
      (set: (l: { endpoint: string }, v: number) => void) => {
        const st = self.eventStats();
        if (st) for (const [id, s] of Object.entries(st.endpoints)) f(id, s, set);
      };

    // KV events.
    mirrorCounter('kvroute_kv_event_batches_total', 'KV-event batches applied, by endpoint (live and replayed).', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.batches)));
    mirrorCounter('kvroute_kv_events_total', 'KV events inside applied batches, by endpoint.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.events)));
    mirrorCounter('kvroute_kv_event_malformed_total', 'KV-event messages (kind="message") or single events (kind="event") that could not be decoded, by endpoint.', ['endpoint', 'kind'], (set) => {
      const st = self.eventStats();
      if (!st) return;
      for (const [id, s] of Object.entries(st.endpoints)) {
        set({ endpoint: id, kind: 'message' }, s.malformedMessages);
        set({ endpoint: id, kind: 'event' }, s.malformedEvents);
      }
    });
    mirrorCounter('kvroute_kv_event_gaps_total', 'Sequence gaps detected in an endpoint\'s KV-event stream.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.gaps)));
    mirrorCounter('kvroute_kv_event_replays_total', 'Replays through the endpoint\'s replay socket, by result (ok, failed).', ['endpoint', 'result'], (set) => {
      const st = self.eventStats();
      if (!st) return;
      for (const [id, s] of Object.entries(st.endpoints)) {
        set({ endpoint: id, result: 'ok' }, s.replays);
        set({ endpoint: id, result: 'failed' }, s.replayFailures);
      }
    });
    mirrorCounter('kvroute_kv_event_resets_total', 'Times everything known of an endpoint\'s cache was dropped (unrecoverable gap, restart).', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.resets)));
    mirrorCounter('kvroute_kv_event_dropped_total', 'KV-event messages or events dropped by ingestion, by endpoint and reason (oversized_message, oversized_event, queue_full, unconfirmed_seq_reset, foreign_publisher).', ['endpoint', 'reason'], (set) => {
      const st = self.eventStats();
      if (!st) return;
      for (const [id, s] of Object.entries(st.endpoints)) {
        set({ endpoint: id, reason: 'oversized_message' }, s.oversizedMessages ?? 0);
        set({ endpoint: id, reason: 'oversized_event' }, s.oversizedEvents ?? 0);
        set({ endpoint: id, reason: 'queue_full' }, s.queueDrops ?? 0);
        set({ endpoint: id, reason: 'unconfirmed_seq_reset' }, s.unconfirmedSeqResets ?? 0);
        set({ endpoint: id, reason: 'foreign_publisher' }, s.foreignMessages ?? 0);
      }
    });
    mirrorCounter('kvroute_kv_event_restarts_total', 'Publisher restarts confirmed (replay, process start time, or a run of lower sequence numbers), by endpoint.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.restarts ?? 0)));
    mirrorCounter('kvroute_kv_event_sink_failures_total', 'KV-event batches the block index failed to apply (replayed later, never counted as applied), by endpoint.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.sinkFailures ?? 0)));
    mirrorGauge('kvroute_kv_event_queued_bytes', 'Payload bytes waiting in an endpoint\'s KV-event queue.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.queuedBytes ?? 0)));
    mirrorGauge('kvroute_kv_event_last_age_seconds', 'Seconds since the endpoint\'s last applied KV-event batch (-1: none yet).', ['endpoint'], ev((id, s, set) =>
      set({ endpoint: id }, s.lastEventAt > 0 ? Math.max(0, self.#clock.now() - s.lastEventAt) / 1000 : -1)));
    mirrorGauge('kvroute_kv_event_subscriber_connected', '1 when the endpoint\'s KV-event subscriber is connected and running.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, s.connected ? 1 : 0)));
    mirrorCounter('kvroute_kv_event_unknown_topic_messages_total', 'KV-event messages whose topic names no known endpoint (pod-id mismatch), by topic (top 20).', ['topic'], (set) => {
      const st = self.eventStats();
      if (!st) return;
      const top = Object.entries(st.unknownTopics).sort((a, b) => b[1] - a[1]).slice(0, MAX_TOPIC_LABELS);
      for (const [topic, n] of top) set({ topic }, n);
    });
    mirrorCounter('kvroute_kv_event_throttled_seconds_total', 'Seconds an endpoint\'s KV-event ingestion waited because it had used its share of the event loop (a flood or a huge replay: the router stays responsive, that endpoint\'s index lags), by endpoint.', ['endpoint'], ev((id, s, set) => set({ endpoint: id }, (s.throttledMs ?? 0) / 1000)));
    mirrorCounter('kvroute_kv_event_rejected_connections_total', 'KV-event publisher connections refused by the bind-mode address allow-list (--kv-events-allow-from, ZeroMQ ZAP), by publisher address (top 20).', ['address'], (set) => {
      const st = self.eventStats();
      if (!st?.rejectedPublishers) return;
      const top = Object.entries(st.rejectedPublishers).sort((a, b) => b[1] - a[1]).slice(0, MAX_TOPIC_LABELS);
      for (const [address, n] of top) set({ address }, n);
    });

    // Block index.
    const idx = (f: (s: IndexStats, set: (l: Record<string, string>, v: number) => void) => void) => (set: (l: Record<string, string>, v: number) => void) => {
      const s = self.indexStats();
      if (s) f(s, set);
    };
    mirrorGauge('kvroute_index_entries', 'Entries (block key, endpoint, tier) held by the block index, by backend.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.entries)));
    mirrorGauge('kvroute_index_bytes', 'Estimated bytes held (memory) or used (Redis) by the block index.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.bytes)));
    mirrorGauge('kvroute_index_available', '1 when the block index backend answers (Redis reachable).', ['backend'], idx((s, set) => set({ backend: s.backend }, s.available ? 1 : 0)));
    mirrorGauge('kvroute_index_endpoint_entries', 'Block index entries per endpoint.', ['endpoint'], idx((s, set) => {
      for (const [id, n] of Object.entries(s.endpoints)) set({ endpoint: id }, n);
    }));
    mirrorCounter('kvroute_index_blocks_added_total', 'Blocks added to the index since start.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.added)));
    mirrorCounter('kvroute_index_blocks_removed_total', 'Blocks removed from the index since start.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.removed)));
    mirrorCounter('kvroute_index_blocks_evicted_total', 'Index entries dropped to stay within bounds.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.evicted)));
    mirrorCounter('kvroute_index_lookups_total', 'Index lookups.', ['backend'], idx((s, set) => set({ backend: s.backend }, s.lookups)));
    mirrorCounter('kvroute_index_errors_total', 'Index operations that failed (backend unreachable, timeout).', ['backend'], idx((s, set) => set({ backend: s.backend }, s.errors)));
    mirrorCounter('kvroute_index_unknown_parents_total', 'BlockStored events whose parent block was unknown (chain could not be keyed).', ['backend'], idx((s, set) => set({ backend: s.backend }, s.unknownParents)));

    // Sessions and the precise scorer.
    mirrorGauge('kvroute_session_bindings', 'Live session bindings (session key -> endpoint).', [], (set) => {
      const n = self.sessionCount();
      if (n !== undefined) set({}, n);
    });
    mirrorCounter('kvroute_precise_scorer_requests_total', 'Requests the precise prefix scorer scored, by mode: precise (from the index) or the fallback reason (approximate).', ['mode'], (set) => {
      const s = self.preciseScorerStats();
      if (!s) return;
      set({ mode: 'precise' }, s.precise);
      for (const [reason, n] of Object.entries(s.fallbacks)) set({ mode: reason }, n);
    });
    mirrorGauge('kvroute_precise_scorer_speculative_entries', 'Speculative block entries the precise scorer holds (picked, not yet confirmed by events).', [], (set) => {
      const s = self.preciseScorerStats();
      if (s) set({}, s.speculativeEntries);
    });

    // The router's tokenizer (precise routing).
    const tok = (): TokenizerStatsLike | undefined => read(self.#providers.tokenizer);
    mirrorCounter('kvroute_tokenizer_rejected_total', 'Requests the router did not tokenize, by reason: queue_full (worker queue at its limit; precise routing fell back to approximate), aborted (the client went away first).', ['reason'], (set) => {
      const s = tok();
      if (!s) return;
      set({ reason: 'queue_full' }, s.queueFull);
      set({ reason: 'aborted' }, s.aborted);
    });
    mirrorGauge('kvroute_tokenizer_worker_jobs', 'Tokenizer worker jobs now, by state (queued, running).', ['state'], (set) => {
      const w = tok()?.workers;
      if (!w) return;
      set({ state: 'queued' }, w.queued);
      set({ state: 'running' }, w.running);
    });
    mirrorCounter('kvroute_tokenizer_worker_cancelled_total', 'Tokenizer worker jobs cancelled by their request\'s abort, by stage: queued (never ran) or running (result dropped).', ['stage'], (set) => {
      const w = tok()?.workers;
      if (!w) return;
      set({ stage: 'queued' }, w.cancelledQueued);
      set({ stage: 'running' }, w.cancelledRunning);
    });
    mirrorCounter('kvroute_tokenizer_worker_fallbacks_total', 'Texts tokenized on the event loop because their worker failed.', [], (set) => {
      const s = tok();
      if (s) set({}, s.workerFallbacks);
    });
    mirrorCounter('kvroute_tokenizer_fast_path_pieces_total', 'Pre-tokens of the fast BPE path, by result: hit (ids from its cache) or miss (BPE run).', ['result'], (set) => {
      const f = tok()?.fastBpe;
      if (!f) return;
      set({ result: 'hit' }, f.pieceHits);
      set({ result: 'miss' }, f.pieceMisses);
    });
    mirrorCounter('kvroute_tokenizer_fast_path_fallbacks_total', 'Texts the fast BPE path handed back to @huggingface/tokenizers (a merge outside the vocabulary).', [], (set) => {
      const f = tok()?.fastBpe;
      if (f) set({}, f.fallbacks);
    });
  }
}
