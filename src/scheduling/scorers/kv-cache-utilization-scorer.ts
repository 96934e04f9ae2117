/**
 * kv-cache-utilization-scorer (llm-d's formula): prefers endpoints with free KV-cache space.
 *
 *   score_i = 1 - metrics.kvUsage of candidate i      (kvUsage in [0,1]; clamped)
 *
 * Absolute, not relative: an idle fleet scores ~1 everywhere. No parameters.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';

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
