/**
 * Name maps from each engine's Prometheus metrics to an {@link EndpointMetrics} snapshot
 * (protocols.md section 2). For every field the first name present wins, so current and older
 * vLLM names both work. Samples of one name with several label sets (data-parallel ranks,
 * several models) are summed; usage ratios are averaged.
 */
import type { EndpointMetrics, EngineKind } from '../core/endpoint.js';
import type { PromSample } from './prom-text.js';

interface EngineMap {
  waiting: readonly string[];
  running: readonly string[];
  kvUsage: readonly string[];
  prefixQueries: readonly string[];
  prefixHits: readonly string[];
  /** Info gauge carrying `block_size` / `num_gpu_blocks` labels. */
  cacheConfig: readonly string[];
}

export const ENGINE_MAPS: Readonly<Record<EngineKind, EngineMap>> = {
  vllm: {
    waiting: ['vllm:num_requests_waiting'],
    running: ['vllm:num_requests_running'],
    kvUsage: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'],
    prefixQueries: ['vllm:prefix_cache_queries_total', 'vllm:gpu_prefix_cache_queries_total'],
    prefixHits: ['vllm:prefix_cache_hits_total', 'vllm:gpu_prefix_cache_hits_total'],
    cacheConfig: ['vllm:cache_config_info'],
  },
  sglang: {
    waiting: ['sglang:num_queue_reqs'],
    running: ['sglang:num_running_reqs'],
    kvUsage: ['sglang:token_usage'],
    prefixQueries: [],
    prefixHits: [],
    cacheConfig: [],
  },
  llamacpp: {
    waiting: ['llamacpp:requests_deferred'],
    running: ['llamacpp:requests_processing'],
    kvUsage: ['llamacpp:kv_cache_usage_ratio'],
    prefixQueries: [],
    prefixHits: [],
    cacheConfig: [],
  },
};

/** Every metric name an engine map reads (to skip the rest while parsing). */
export function namesFor(engine: EngineKind): Set<string> {
  const m = ENGINE_MAPS[engine];
  return new Set([...m.waiting, ...m.running, ...m.kvUsage, ...m.prefixQueries, ...m.prefixHits, ...m.cacheConfig]);
}

function pick(byName: Map<string, PromSample[]>, names: readonly string[]): PromSample[] | undefined {
  for (const n of names) {
    const s = byName.get(n);
    if (s && s.length > 0) return s;
  }
  return undefined;
}

const sum = (s: PromSample[]) => s.reduce((a, x) => a + (Number.isFinite(x.value) ? x.value : 0), 0);

/**
 * Builds a snapshot from parsed samples. Returns undefined when none of the engine's
 * load gauges is present (the endpoint is not serving the expected engine's metrics).
 */
export function toEndpointMetrics(engine: EngineKind, samples: readonly PromSample[], now: number): EndpointMetrics | undefined {
  const m = ENGINE_MAPS[engine];
  const byName = new Map<string, PromSample[]>();
  for (const s of samples) {
    const arr = byName.get(s.name);
    if (arr) arr.push(s);
    else byName.set(s.name, [s]);
  }
  const waiting = pick(byName, m.waiting);
  const running = pick(byName, m.running);
  if (!waiting && !running) return undefined;
  const kv = pick(byName, m.kvUsage);
  const out: EndpointMetrics = {
    waiting: waiting ? sum(waiting) : 0,
    running: running ? sum(running) : 0,
    kvUsage: kv ? Math.min(1, Math.max(0, sum(kv) / kv.length)) : 0,
    updatedAt: now,
  };
  const q = pick(byName, m.prefixQueries);
  const h = pick(byName, m.prefixHits);
  if (q) out.prefixQueries = sum(q);
  if (h) out.prefixHits = sum(h);
  const cfg = pick(byName, m.cacheConfig)?.[0];
  if (cfg) {
    const bs = Number(cfg.labels.block_size);
    const nb = Number(cfg.labels.num_gpu_blocks);
    if (Number.isFinite(bs) && bs > 0) out.blockSize = bs;
    if (Number.isFinite(nb) && nb > 0) out.numGpuBlocks = nb;
  }
  return out;
}
