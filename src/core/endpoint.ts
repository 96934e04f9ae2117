/**
 * An endpoint is one model-server replica the router can send requests to. It carries no
 * Kubernetes or Envoy types. Its {@link EndpointMetrics} snapshot is replaced whole by the
 * datalayer on every scrape; plugins only read it.
 */

/** What a replica does in prefill/decode disaggregation. */
export type EndpointRole = 'both' | 'prefill' | 'decode';

/**
 * Engine flavour, selects the engine adapter (src/engines) used to scrape and read it:
 * `openai` is a generic OpenAI-compatible server with no known metrics.
 */
export type EngineKind = 'vllm' | 'sglang' | 'llamacpp' | 'openai';

/**
 * How an engine keeps its prefix cache (src/engines adapters): `blocks` = paged KV blocks with
 * LRU eviction (vLLM, SGLang; capacity in blocks when reported); `slots` = llama.cpp's server
 * slots, each keeping only the last prompt it processed (slot LRU when a new prompt needs one).
 */
export type CacheModel = { kind: 'blocks'; capacityBlocks?: number } | { kind: 'slots'; slots: number };

/** Liveness and load-data freshness of an endpoint, kept apart (written by the scraper). */
export interface EndpointHealthState {
  /** `/health` (or `/metrics`) answered within the liveness bound. */
  live: boolean;
  /** The load gauges in `metrics` are recent (younger than the scraper's `staleAfterMs`). */
  loadFresh: boolean;
  /** Why the endpoint is not usable, or what is degraded ('' when all is well). */
  reason: string;
  /** Where the engine kind came from. */
  engineSource: 'override' | 'detected' | 'default';
  /** Detected restarts (process start changed, counters went back, or came back after refusing connections). */
  restarts: number;
  /**
   * Answered before, then nothing on /health or /metrics for longer than the liveness bound, while
   * still accepting connections: maybe dead, maybe only too slow to answer probes. Such endpoints
   * are routed to again in panic mode (EndpointPool, `panicThresholdPercent`); a refusing one never is.
   */
  silent?: boolean;
}

/** A point-in-time view of an endpoint's engine, scraped from its `/metrics`. */
export interface EndpointMetrics {
  /** Requests waiting in the engine queue. */
  waiting: number;
  /** Requests running (in the batch). */
  running: number;
  /** KV-cache usage in [0, 1] (0 when unknown: see `kvUsageUnknown`). */
  kvUsage: number;
  /**
   * True when the engine reports no meaningful KV usage (newer llama.cpp builds dropped it; on
   * llama.cpp's slot cache a full cache is the cached prompts, not pressure): scorers treat the
   * value as unknown, not as 0 or 1.
   */
  kvUsageUnknown?: boolean;
  /**
   * True when this snapshot is older than the scraper's staleness bound (the engine's /metrics
   * is slow or failing while it still answers /health): load scorers treat it as unknown.
   */
  stale?: boolean;
  /** Engine KV block size in tokens, when reported (`vllm:cache_config_info`). */
  blockSize?: number;
  /** Engine KV capacity in blocks, when reported. */
  numGpuBlocks?: number;
  /** Prefix-cache queries counter (tokens), when reported. */
  prefixQueries?: number;
  /** Prefix-cache hits counter (tokens), when reported. */
  prefixHits?: number;
  /** Clock time (ms) of the scrape this snapshot came from; 0 = never scraped. */
  updatedAt: number;
}

export const EMPTY_METRICS: EndpointMetrics = Object.freeze({ waiting: 0, running: 0, kvUsage: 0, updatedAt: 0 });

export interface Endpoint {
  /** Stable id: `namespace/name` in Kubernetes, else `host:port`. */
  readonly id: string;
  /** `host:port` the router connects to. */
  readonly address: string;
  /** Base URL, e.g. `http://127.0.0.1:8100`. */
  readonly url: string;
  readonly role: EndpointRole;
  /** Engine kind: the `--engine` / `;engine=` override, else detected per endpoint by the scraper. */
  engine: EngineKind;
  /** Dense index in the pool (0..n-1), for typed-array bookkeeping on the hot path. */
  readonly index: number;
  /** Free-form labels (Kubernetes labels, config). */
  readonly labels: Readonly<Record<string, string>>;
  /** Latest metrics snapshot (replaced whole by the datalayer). */
  metrics: EndpointMetrics;
  /** Models the endpoint serves (from `/v1/models`); empty = unknown, accept any. */
  models: readonly string[];
  /** False while the endpoint fails health checks or refuses connections. */
  healthy: boolean;
  /** Liveness / freshness / engine detail behind `healthy` (absent until the scraper ran). */
  health?: EndpointHealthState;
  /** How the engine's prefix cache is organised (from its adapter and /props); absent = unknown (blocks). */
  cacheModel?: CacheModel;
  /**
   * Where the engine publishes its KV-cache events (vLLM `--kv-events-config`): `endpoint` is its
   * ZeroMQ PUB address (`tcp://host:5557`; '' when the pod connects to the router's bound socket
   * instead), `replayEndpoint` its replay ROUTER (`tcp://host:5558`). Absent = no events.
   */
  readonly kvEvents?: { endpoint: string; replayEndpoint?: string };
}
