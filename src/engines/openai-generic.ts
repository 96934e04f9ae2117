/**
 * Generic OpenAI-compatible server adapter: nothing engine-specific is known. No load metrics
 * (load scorers see it as unknown, the in-flight counts of the router still work), cached
 * tokens only from `usage.prompt_tokens_details.cached_tokens` when the server reports them, no
 * cache reset, no restart token, no tokenizer endpoint.
 */
import type { CacheModel } from '../core/endpoint.js';
import { finalObject, openAiUsage } from './common.js';
import type { EngineAdapter, EngineMetricMap } from './types.js';

const metrics: EngineMetricMap = { waiting: [], running: [], kvUsage: [], prefixQueries: [], prefixHits: [], cacheConfig: [], processStart: [], requests: [] };

/** The generic OpenAI-compatible adapter. */
export const openaiGenericAdapter: EngineAdapter = {
  kind: 'openai',
  label: 'OpenAI-compatible server',
  metricPrefix: undefined,
  modelsOwner: undefined,
  metrics,
  infoPaths: [],
  kvUsageIsPressure: false,
  kvEvents: false,
  cacheReset: { kind: 'none', why: 'a generic OpenAI-compatible server has no known cache-reset endpoint' },
  limitations: [
    'no known load metrics: load scorers treat it as unknown (the router\'s own in-flight counts still apply)',
    'no prefix-cache counters; cached tokens only when its usage carries prompt_tokens_details.cached_tokens',
    'no cache reset, no restart detection, no tokenizer endpoint',
  ],
  snapshot: () => undefined,
  restartToken: () => undefined,
  readUsage: (response) => openAiUsage(finalObject(response)),
  cachedTokens(response) {
    return this.readUsage(response)?.cachedTokens;
  },
  cacheModel: (): CacheModel => ({ kind: 'blocks' }),
  tokenizeText: () => undefined,
  parseTokens() {
    throw new Error('a generic OpenAI-compatible server has no /tokenize');
  },
};
