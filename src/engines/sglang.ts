/**
 * SGLang adapter. Metrics (`--enable-metrics`): `sglang:num_queue_reqs`, `sglang:num_running_reqs`,
 * `sglang:token_usage` (share of KV tokens in use), counters `sglang:prompt_tokens_total` and
 * `sglang:cached_tokens_total` (hit rate = cached / prompt). No process-start gauge in
 * multiprocess mode: a restart shows as counters going back (the scraper watches for it).
 * Cached tokens: `usage.prompt_tokens_details.cached_tokens` with `--enable-cache-report`, or
 * `meta_info.cached_tokens` on the native `/generate`. Cache reset: `POST /flush_cache`.
 * Cache model: radix tree over token pages (page_size 1 by default) with LRU eviction, capacity
 * `max_total_num_tokens` from `/server_info` (older: `/get_server_info`), counted in 16-token blocks.
 */
import type { CacheModel, EndpointMetrics } from '../core/endpoint.js';
import { finalObject, num, obj, openAiUsage, parseTokenArray, processStartToken, snapshotFromMap } from './common.js';
import type { EngineAdapter, EngineMetricMap, EngineUsage } from './types.js';

const metrics: EngineMetricMap = {
  waiting: ['sglang:num_queue_reqs'],
  running: ['sglang:num_running_reqs'],
  kvUsage: ['sglang:token_usage'],
  prefixQueries: ['sglang:prompt_tokens_total'],
  prefixHits: ['sglang:cached_tokens_total'],
  cacheConfig: [],
  processStart: ['process_start_time_seconds'],
  requests: ['sglang:num_requests_total', 'sglang:e2e_request_latency_seconds_count'],
};

/** The SGLang adapter. */
export const sglangAdapter: EngineAdapter = {
  kind: 'sglang',
  label: 'SGLang',
  metricPrefix: 'sglang:',
  modelsOwner: 'sglang',
  metrics,
  infoPaths: ['/server_info', '/get_server_info'],
  kvUsageIsPressure: true,
  kvEvents: true,
  cacheReset: { kind: 'http', method: 'POST', path: '/flush_cache' },
  limitations: [
    'per-request cached tokens need SGLang started with --enable-cache-report (the cached_tokens_total counter works without it)',
    'no KV block size is exported: the router cannot check it against its own',
  ],
  snapshot: (samples, now) => snapshotFromMap(metrics, samples, now, true),
  restartToken: (samples) => processStartToken(metrics, samples),
  readUsage(response: unknown): EngineUsage | undefined {
    const o = finalObject(response);
    const u = openAiUsage(o);
    const meta = obj(o?.meta_info);
    if (meta) {
      const out: EngineUsage = { ...(u ?? {}) };
      const cached = num(meta.cached_tokens);
      const p = num(meta.prompt_tokens);
      const c = num(meta.completion_tokens);
      if (out.promptTokens === undefined && p !== undefined) out.promptTokens = p;
      if (out.completionTokens === undefined && c !== undefined) out.completionTokens = c;
      if (out.cachedTokens === undefined && cached !== undefined) {
        out.cachedTokens = cached;
        out.cachedFrom = 'meta_info.cached_tokens';
      }
      return out;
    }
    return u;
  },
  cachedTokens(response: unknown) {
    return this.readUsage(response)?.cachedTokens;
  },
  cacheModel(info, _m: EndpointMetrics | undefined): CacheModel {
    // Radix cache over tokens; capacity expressed in 16-token blocks like vLLM's num_gpu_blocks.
    const tokens = num(info?.max_total_num_tokens) ?? num(obj(info?.server_args)?.max_total_tokens);
    return tokens !== undefined && tokens >= 16 ? { kind: 'blocks', capacityBlocks: Math.floor(tokens / 16) } : { kind: 'blocks' };
  },
  tokenizeText: (text, addSpecialTokens, model) => ({ path: '/tokenize', body: { ...(model ? { model } : {}), prompt: text, add_special_tokens: addSpecialTokens } }),
  parseTokens: (body) => parseTokenArray(body, 'SGLang'),
};
