/**
 * What kvroute needs to know about one serving engine (vLLM, SGLang, llama.cpp, a generic
 * OpenAI-compatible server): one small interface, one adapter per engine (src/engines/*.ts),
 * all held to the same conformance suite (engines.conformance.test.ts) against recorded output.
 */
import type { CacheModel, EndpointMetrics, EngineKind } from '../core/endpoint.js';
import type { PromSample } from '../datalayer/prom-text.js';

/** Per snapshot field, the metric names to try in order (current names first, older after). */
export interface EngineMetricMap {
  waiting: readonly string[];
  running: readonly string[];
  /** KV usage in [0,1]; empty when the engine reports none (or none that means pressure). */
  kvUsage: readonly string[];
  /** Prefix-cache counters in tokens: queries (prompt tokens looked up) and hits (tokens served from cache). */
  prefixQueries: readonly string[];
  prefixHits: readonly string[];
  /**
   * Counter of prompt tokens computed (NOT served from the cache), for an engine that exports that
   * instead of a queries counter (llama.cpp: `prompt_tokens_total` excludes its
   * `prompt_tokens_cached_total`): queries = misses + hits. Read only when `prefixQueries` has none.
   */
  prefixMisses?: readonly string[];
  /** Info gauge carrying `block_size` / `num_gpu_blocks` labels. */
  cacheConfig: readonly string[];
  /** Gauge of the process start time (restart detection), when exported. */
  processStart: readonly string[];
  /** Finished-request counters (doctor's "requests since start"). */
  requests: readonly string[];
}

/** Usage of one response as the engine reported it. */
export interface EngineUsage {
  promptTokens?: number;
  completionTokens?: number;
  /** Prompt tokens served from the engine's prefix cache. */
  cachedTokens?: number;
  /** Where `cachedTokens` came from (e.g. `usage.prompt_tokens_details.cached_tokens`, `timings.cache_n`). */
  cachedFrom?: string;
}

/** How to clear an engine's prefix cache, or why it cannot be cleared. */
export type CacheReset =
  | { kind: 'http'; method: 'POST' | 'GET'; path: string }
  /** One request per slot (`{slot}` replaced by 0..slots-1); works only when the server enables it. */
  | { kind: 'per-slot'; method: 'POST'; path: string }
  | { kind: 'none'; why: string };

/** A request to the engine's own tokenizer endpoint and how to read its answer. */
export interface TokenizeCall {
  path: string;
  body: Record<string, unknown>;
}

/** The adapter of one engine. Every method is pure (no I/O): callers do the HTTP. */
export interface EngineAdapter {
  readonly kind: EngineKind;
  /** Human name for messages ("llama.cpp"). */
  readonly label: string;
  /** Prefix of its Prometheus metric names (`vllm:`), undefined when it has none. */
  readonly metricPrefix: string | undefined;
  /** `owned_by` of its `/v1/models` entries. */
  readonly modelsOwner: string | undefined;
  readonly metrics: EngineMetricMap;
  /** Paths to GET for server info (llama.cpp `/props`, SGLang `/server_info` then `/get_server_info`). */
  readonly infoPaths: readonly string[];
  /** Whether its `kvUsage` gauge means memory pressure a load scorer should see. */
  readonly kvUsageIsPressure: boolean;
  /** Whether it publishes vLLM-format KV-cache events (precise routing). */
  readonly kvEvents: boolean;
  readonly cacheReset: CacheReset;
  /** What kvroute cannot measure on this engine (shown by doctor, bench and docs/engines.md). */
  readonly limitations: readonly string[];
  /** Snapshot from parsed samples; undefined when none of its load gauges is present. */
  snapshot(samples: readonly PromSample[], now: number): EndpointMetrics | undefined;
  /** Restart token from `/metrics` (samples and response headers): a change means the process restarted. */
  restartToken(samples: readonly PromSample[], headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined;
  /** Usage (with cached tokens) from a response body: a JSON body, or the final SSE chunk(s) with usage/timings. */
  readUsage(response: unknown): EngineUsage | undefined;
  /** Shorthand: cached prompt tokens of a response, undefined when the engine did not say. */
  cachedTokens(response: unknown): number | undefined;
  /** The cache model from its server info (`/props` etc.) and the snapshot. */
  cacheModel(info: Record<string, unknown> | undefined, metrics: EndpointMetrics | undefined): CacheModel;
  /** Its `/tokenize` request for a plain text, undefined when it has none. */
  tokenizeText(text: string, addSpecialTokens: boolean, model: string | undefined): TokenizeCall | undefined;
  /** Token ids from its `/tokenize` answer; throws an Error saying what is wrong (empty, wrong shape). */
  parseTokens(body: unknown): number[];
}
