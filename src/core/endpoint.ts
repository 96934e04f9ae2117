/**
 * An endpoint is one model-server replica the router can send requests to. It carries no
 * Kubernetes or Envoy types. Its {@link EndpointMetrics} snapshot is replaced whole by the
 * datalayer on every scrape; plugins only read it.
 */

/** What a replica does in prefill/decode disaggregation. */
export type EndpointRole = 'both' | 'prefill' | 'decode';

/** Engine flavour, selects the metric-name map used to scrape it. */
export type EngineKind = 'vllm' | 'sglang' | 'llamacpp';

/** A point-in-time view of an endpoint's engine, scraped from its `/metrics`. */
export interface EndpointMetrics {
  /** Requests waiting in the engine queue. */
  waiting: number;
  /** Requests running (in the batch). */
  running: number;
  /** KV-cache usage in [0, 1]. */
  kvUsage: number;
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
  readonly engine: EngineKind;
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
  /**
   * Where the engine publishes its KV-cache events (vLLM `--kv-events-config`): `endpoint` is its
   * ZeroMQ PUB address (`tcp://host:5557`; '' when the pod connects to the router's bound socket
   * instead), `replayEndpoint` its replay ROUTER (`tcp://host:5558`). Absent = no events.
   */
  readonly kvEvents?: { endpoint: string; replayEndpoint?: string };
}
