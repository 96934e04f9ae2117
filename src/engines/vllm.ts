/**
 * vLLM adapter. Metrics: `vllm:` gauges and counters (v1 names first, v0 names after);
 * `process_start_time_seconds` (prometheus_client's process collector) detects restarts.
 * Cached tokens: `usage.prompt_tokens_details.cached_tokens` (needs `--enable-prompt-tokens-details`).
 * Cache reset: `POST /reset_prefix_cache`. Cache model: paged blocks with LRU, capacity
 * `num_gpu_blocks` from `vllm:cache_config_info`. Tokenizer: `POST /tokenize {prompt}`.
 */
import type { CacheModel, EndpointMetrics } from '../core/endpoint.js';
import type { PromSample } from '../datalayer/prom-text.js';
import { finalObject, openAiUsage, parseTokenArray, processStartToken, snapshotFromMap } from './common.js';
import type { EngineAdapter, EngineMetricMap, EngineUsage } from './types.js';

const metrics: EngineMetricMap = {
  waiting: ['vllm:num_requests_waiting'],
  running: ['vllm:num_requests_running'],
  kvUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'],
  prefixQueries: ['vllm:prefix_cache_queries_total', 'vllm:gpu_prefix_cache_queries_total', 'vllm:prefix_cache_queries', 'vllm:gpu_prefix_cache_queries'],
  prefixHits: ['vllm:prefix_cache_hits_total', 'vllm:gpu_prefix_cache_hits_total', 'vllm:prefix_cache_hits', 'vllm:gpu_prefix_cache_hits'],
  cacheConfig: ['vllm:cache_config_info'],
  processStart: ['process_start_time_seconds'],
  requests: ['vllm:request_success_total', 'vllm:e2e_request_latency_seconds_count'],
};

/** The vLLM adapter. */
export const vllmAdapter: EngineAdapter = {
  kind: 'vllm',
  label: 'vLLM',
  metricPrefix: 'vllm:',
  modelsOwner: 'vllm',
  metrics,
  infoPaths: [],
  kvUsageIsPressure: true,
  kvEvents: true,
  cacheReset: { kind: 'http', method: 'POST', path: '/reset_prefix_cache' },
  limitations: ['per-request cached tokens need vLLM started with --enable-prompt-tokens-details (the prefix-cache counters work without it)'],
  snapshot: (samples: readonly PromSample[], now: number) => snapshotFromMap(metrics, samples, now, true),
  restartToken: (samples) => processStartToken(metrics, samples),
  readUsage: (response: unknown): EngineUsage | undefined => openAiUsage(finalObject(response)),
  cachedTokens(response: unknown) {
    return this.readUsage(response)?.cachedTokens;
  },
  cacheModel: (_info, m: EndpointMetrics | undefined): CacheModel =>
    m?.numGpuBlocks !== undefined ? { kind: 'blocks', capacityBlocks: m.numGpuBlocks } : { kind: 'blocks' },
  tokenizeText: (text, addSpecialTokens, model) => ({ path: '/tokenize', body: { ...(model ? { model } : {}), prompt: text, add_special_tokens: addSpecialTokens } }),
  parseTokens: (body) => parseTokenArray(body, 'vLLM'),
};
