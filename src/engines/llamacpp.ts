/**
 * llama.cpp (`llama-server`) adapter.
 *
 * Metrics (`--metrics`): `llamacpp:requests_processing` (busy slots), `llamacpp:requests_deferred`
 * (queued), token counters; older builds also `llamacpp:kv_cache_usage_ratio`, newer ones dropped
 * it. Newer builds count prompt tokens served from the cache (`llamacpp:prompt_tokens_cached_total`)
 * beside those computed (`llamacpp:prompt_tokens_total`, which excludes the cached ones): queries
 * = computed + cached, hits = cached. Older builds have no cached counter, so no prefix-cache
 * counters (hit rates then come from each response). `/metrics` is answered through the server's task queue, so it
 * blocks while a prefill runs (seconds); `/health` answers at once: the scraper keeps the two apart.
 * The `Process-Start-Time-Unix` header of `/metrics` carries the server's start timestamp
 * (`t_start`, an opaque token here): a change means a restart.
 *
 * Cached tokens of a response, first found wins: `usage.prompt_tokens_details.cached_tokens`
 * (newer builds), `timings.cache_n`, else `usage.prompt_tokens - timings.prompt_n` (older builds
 * report only the tokens they evaluated).
 *
 * Cache model: builds before the host-memory prompt cache (llama.cpp PR #16391, about b6700):
 * `-np N` slots (`/props` `total_slots`); each slot keeps only the last prompt it processed (plus
 * its output); a new prompt takes the idle slot sharing the longest prefix with it, else the least
 * recently used one. Newer builds (`/props` `build_info` `b<N>-...`, N >= 6700) also save a slot's
 * prompt to host RAM when the slot is reused (`--cache-ram`, default 8 GiB) and restore it when a
 * later request shares its prefix: measured on b11434, 6 conversations on one server with 2 slots
 * all hit on their follow-ups. Their cache is an LRU pool of prompts whose size /props does not
 * say, so it is modelled as blocks with no reported capacity: the approximate index uses its
 * default and learns the real one from the cached tokens the engine reports.
 * KV usage is not pressure: a full cache is the cached prompts, so the adapter reports it as unknown.
 *
 * Cache reset: `POST /slots/{id}?action=erase` per slot, which the server allows only when
 * started with `--slot-save-path`; otherwise the cache cannot be cleared and carries over.
 * Tokenizer: `POST /tokenize {content, add_special}` -> `{tokens: [...]}`.
 */
import type { CacheModel } from '../core/endpoint.js';
import { finalObject, num, obj, openAiUsage, parseTokenArray, snapshotFromMap } from './common.js';
import type { EngineAdapter, EngineMetricMap, EngineUsage } from './types.js';

const metrics: EngineMetricMap = {
  waiting: ['llamacpp:requests_deferred'],
  running: ['llamacpp:requests_processing'],
  kvUsage: ['llamacpp:kv_cache_usage_ratio'],
  prefixQueries: [],
  prefixHits: ['llamacpp:prompt_tokens_cached_total'],
  prefixMisses: ['llamacpp:prompt_tokens_total'],
  cacheConfig: [],
  processStart: [],
  requests: [],
};

/** First llama.cpp build (approximately) with the host-memory prompt cache on by default (PR #16391). */
export const HOST_PROMPT_CACHE_BUILD = 6700;

/** The llama.cpp adapter. */
export const llamacppAdapter: EngineAdapter = {
  kind: 'llamacpp',
  label: 'llama.cpp',
  metricPrefix: 'llamacpp:',
  modelsOwner: 'llamacpp',
  metrics,
  infoPaths: ['/props'],
  kvUsageIsPressure: false,
  kvEvents: false,
  cacheReset: { kind: 'per-slot', method: 'POST', path: '/slots/{slot}?action=erase' },
  limitations: [
    'builds without llamacpp:prompt_tokens_cached_total have no prefix-cache counters: hit rates come from each response (timings.cache_n, or prompt_tokens - timings.prompt_n on older builds)',
    'no finished-request counter: doctor cannot compare requests served with requests routed',
    'no KV-cache events: precise routing falls back to approximate routing',
    'the cache can be cleared only when llama-server runs with --slot-save-path (POST /slots/{id}?action=erase); otherwise caches carry over between benchmark runs',
    '/metrics blocks during a prefill: load data goes stale while the server stays live (/health)',
  ],
  snapshot: (samples, now) => snapshotFromMap(metrics, samples, now, false),
  restartToken(_samples, headers) {
    const h = headers['process-start-time-unix'];
    const v = Array.isArray(h) ? h[0] : h;
    return v !== undefined && v !== '' ? v : undefined;
  },
  readUsage(response: unknown): EngineUsage | undefined {
    const o = finalObject(response);
    if (!o) return undefined;
    const u = openAiUsage(o) ?? {};
    const t = obj(o.timings);
    if (u.promptTokens === undefined) {
      // Native /completion: tokens_evaluated is the prompt length.
      const p = num(o.tokens_evaluated);
      if (p !== undefined) u.promptTokens = p;
    }
    if (u.completionTokens === undefined && t) {
      const c = num(t.predicted_n);
      if (c !== undefined) u.completionTokens = c;
    }
    if (u.cachedTokens === undefined && t) {
      const cacheN = num(t.cache_n);
      const promptN = num(t.prompt_n);
      if (cacheN !== undefined) {
        u.cachedTokens = cacheN;
        u.cachedFrom = 'timings.cache_n';
      } else if (promptN !== undefined && u.promptTokens !== undefined) {
        u.cachedTokens = Math.max(0, u.promptTokens - promptN);
        u.cachedFrom = 'usage.prompt_tokens - timings.prompt_n';
      }
    }
    return Object.keys(u).length > 0 ? u : undefined;
  },
  cachedTokens(response: unknown) {
    return this.readUsage(response)?.cachedTokens;
  },
  cacheModel(info): CacheModel {
    const build = typeof info?.build_info === 'string' ? /^b(\d+)/.exec(info.build_info) : null;
    if (build && Number(build[1]) >= HOST_PROMPT_CACHE_BUILD) return { kind: 'blocks' };
    const slots = num(info?.total_slots);
    return { kind: 'slots', slots: slots !== undefined && slots >= 1 ? Math.floor(slots) : 1 };
  },
  tokenizeText: (text, addSpecialTokens) => ({ path: '/tokenize', body: { content: text, add_special: addSpecialTokens, parse_special: true } }),
  parseTokens: (body) => parseTokenArray(body, 'llama.cpp'),
};
