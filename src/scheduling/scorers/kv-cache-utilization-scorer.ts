/**
 * kv-cache-utilization-scorer (llm-d's formula): prefers endpoints with free KV-cache space.
 *
 *   score_i = 1 - metrics.kvUsage of candidate i      (kvUsage in [0,1]; clamped)
 *
 * Absolute, not relative: an idle fleet scores ~1 everywhere. No parameters.
 *
 * Unknown usage is neutral, not 0 or 1 (unknown-load.ts): a stale snapshot, or an engine whose
 * usage is not pressure or not reported (`kvUsageUnknown`: llama.cpp, whose slots keep their
 * last prompts so a "full" cache is the very cache a follow-up wants) gets the mean score of
 * the candidates whose usage is known.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';
import { neutralizeUnknown } from './unknown-load.js';


const params = z.strictObject({});

/** Scores endpoints with more free KV cache higher. */
export class KvCacheUtilizationScorer implements Scorer {
  readonly type = 'kv-cache-utilization-scorer';
  constructor(readonly name: string = 'kv-cache-utilization-scorer') {}

  score(_ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    for (let i = 0; i < candidates.length; i++) {
      const u = candidates[i].metrics.kvUsage;
      out[i] = u >= 1 ? 0 : u <= 0 || Number.isNaN(u) ? 1 : 1 - u;
    }
    neutralizeUnknown(candidates, out, true, 1);
  }
}

/** Registry entry of {@link KvCacheUtilizationScorer}. */
export const kvCacheUtilizationScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'kv-cache-utilization-scorer',
  kind: 'scorer',
  description: '1 - KV-cache usage',
  params,
  create: (name) => new KvCacheUtilizationScorer(name),
};
