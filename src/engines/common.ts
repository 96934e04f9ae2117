/**
 * Helpers shared by the engine adapters: the metric-map snapshot builder (first name present
 * wins, samples of one name summed over label sets, usage ratios averaged), usage readers, and
 * the OpenAI `/tokenize` answer parser.
 */
import type { EndpointMetrics } from '../core/endpoint.js';
import type { PromSample } from '../datalayer/prom-text.js';
import type { EngineMetricMap, EngineUsage } from './types.js';

/** Finite non-negative number, else undefined. */
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** Object, else undefined. */
export function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Samples grouped by name. */
export function byName(samples: readonly PromSample[]): Map<string, PromSample[]> {
  const m = new Map<string, PromSample[]>();
  for (const s of samples) {
    const a = m.get(s.name);
    if (a) a.push(s);
    else m.set(s.name, [s]);
  }
  return m;
}

/** The samples of the first name in `names` that has any. */
export function pick(m: Map<string, PromSample[]>, names: readonly string[]): PromSample[] | undefined {
  for (const n of names) {
    const s = m.get(n);
    if (s && s.length > 0) return s;
  }
  return undefined;
}

export const sum = (s: readonly PromSample[]): number => s.reduce((a, x) => a + (Number.isFinite(x.value) ? x.value : 0), 0);

/** Every metric name a map reads (to skip the rest while parsing). */
export function mapNames(m: EngineMetricMap): Set<string> {
  return new Set([...m.waiting, ...m.running, ...m.kvUsage, ...m.prefixQueries, ...m.prefixHits, ...(m.prefixMisses ?? []), ...m.cacheConfig, ...m.processStart, ...m.requests]);
}

/**
 * Builds a snapshot with `map`; undefined when neither load gauge (waiting, running) is present.
 * `kvUsageIsPressure` false marks the usage unknown (see EndpointMetrics.kvUsageUnknown).
 */
export function snapshotFromMap(map: EngineMetricMap, samples: readonly PromSample[], now: number, kvUsageIsPressure: boolean): EndpointMetrics | undefined {
  const m = byName(samples);
  const waiting = pick(m, map.waiting);
  const running = pick(m, map.running);
  if (!waiting && !running) return undefined;
  const kv = kvUsageIsPressure ? pick(m, map.kvUsage) : undefined;
  const out: EndpointMetrics = {
    waiting: waiting ? sum(waiting) : 0,
    running: running ? sum(running) : 0,
    kvUsage: kv ? Math.min(1, Math.max(0, sum(kv) / kv.length)) : 0,
    updatedAt: now,
  };
  if (!kv) out.kvUsageUnknown = true;
  const counters = prefixCounters(map, m);
  if (counters.queries !== undefined) out.prefixQueries = counters.queries;
  if (counters.hits !== undefined) out.prefixHits = counters.hits;
  const cfg = pick(m, map.cacheConfig)?.[0];
  if (cfg) {
    const bs = Number(cfg.labels.block_size);
    const nb = Number(cfg.labels.num_gpu_blocks);
    if (Number.isFinite(bs) && bs > 0) out.blockSize = bs;
    if (Number.isFinite(nb) && nb > 0) out.numGpuBlocks = nb;
  }
  return out;
}

/**
 * Prefix-cache counters (tokens) from samples grouped by name: queries from the queries counter,
 * else misses + hits when the engine counts misses (`prefixMisses`) and hits; undefined when absent.
 */
export function prefixCounters(map: EngineMetricMap, m: Map<string, PromSample[]>): { queries?: number; hits?: number } {
  const q = pick(m, map.prefixQueries);
  const h = pick(m, map.prefixHits);
  const out: { queries?: number; hits?: number } = {};
  if (h) out.hits = sum(h);
  if (q) out.queries = sum(q);
  else if (h && map.prefixMisses) {
    const miss = pick(m, map.prefixMisses);
    if (miss) out.queries = sum(miss) + sum(h);
  }
  return out;
}

/** Restart token from a process-start gauge of `map` (first sample), if exported. */
export function processStartToken(map: EngineMetricMap, samples: readonly PromSample[]): string | undefined {
  const s = pick(byName(samples), map.processStart)?.[0];
  return s && Number.isFinite(s.value) && s.value > 0 ? String(s.value) : undefined;
}

/**
 * The object carrying usage in a response: the body itself, or, for an array of SSE chunk
 * objects, the last one with `usage` (or `timings`) merged over earlier ones.
 */
export function finalObject(response: unknown): Record<string, unknown> | undefined {
  if (Array.isArray(response)) {
    let merged: Record<string, unknown> | undefined;
    for (const c of response) {
      const o = obj(c);
      if (o && (o.usage !== undefined || o.timings !== undefined || o.meta_info !== undefined)) merged = { ...(merged ?? {}), ...o };
    }
    return merged;
  }
  return obj(response);
}

/** OpenAI usage (`usage.prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`). */
export function openAiUsage(o: Record<string, unknown> | undefined): EngineUsage | undefined {
  const u = obj(o?.usage);
  if (!u) return undefined;
  const out: EngineUsage = {};
  const p = num(u.prompt_tokens);
  const c = num(u.completion_tokens);
  const cached = num(obj(u.prompt_tokens_details)?.cached_tokens);
  if (p !== undefined) out.promptTokens = p;
  if (c !== undefined) out.completionTokens = c;
  if (cached !== undefined) {
    out.cachedTokens = cached;
    out.cachedFrom = 'usage.prompt_tokens_details.cached_tokens';
  }
  return out;
}

/** vLLM-style `/tokenize` answer `{tokens: [...]}` (also `{count, max_model_len, tokens}`). */
export function parseTokenArray(body: unknown, who: string): number[] {
  const t = obj(body)?.tokens;
  if (!Array.isArray(t)) throw new Error(`${who} /tokenize answered without a 'tokens' array`);
  // llama.cpp with with_pieces answers [{id, piece}]: take the ids.
  const ids = t.map((x) => (typeof x === 'number' ? x : num(obj(x)?.id)));
  if (!ids.every((x): x is number => x !== undefined && Number.isInteger(x) && x >= 0)) throw new Error(`${who} /tokenize answered 'tokens' that are not token ids`);
  if (ids.length === 0) throw new Error(`${who} /tokenize answered an empty token list for a non-empty text (wrong request format for this engine?)`);
  return ids;
}
