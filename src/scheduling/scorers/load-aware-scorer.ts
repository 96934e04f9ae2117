/**
 * load-aware-scorer (llm-d's formula): an absolute score of the engine queue.
 *
 *   q_i = metrics.waiting
 *   score_i = 0.5                                   when q_i = 0
 *           = 0.5 * (1 - min(q_i, threshold) / threshold)   otherwise
 *
 * An empty queue scores 0.5 (not 1: "empty" only means no worse than nothing waiting); a queue of
 * `threshold` or more scores 0. A candidate with stale load data scores the mean of the others
 * (unknown-load.ts).
 *
 * Parameters:
 * - `threshold` (default 128): queue length at which the score reaches 0.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';
import { neutralizeUnknown } from './unknown-load.js';

const params = z.strictObject({
  threshold: z.number().int().positive().default(128),
});

/** llm-d's load-aware scorer on the engine queue. */
export class LoadAwareScorer implements Scorer {
  readonly type = 'load-aware-scorer';
  constructor(
    readonly name: string = 'load-aware-scorer',
    readonly threshold = 128,
  ) {}

  score(_ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    const t = this.threshold;
    for (let i = 0; i < candidates.length; i++) {
      const q = candidates[i].metrics.waiting;
      out[i] = q <= 0 ? 0.5 : 0.5 * (1 - Math.min(q, t) / t);
    }
    neutralizeUnknown(candidates, out, false, 0.5);
  }
}

/** Registry entry of {@link LoadAwareScorer}. */
export const loadAwareScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'load-aware-scorer',
  kind: 'scorer',
  description: '0.5 if the queue is empty, else 0.5*(1-min(q,threshold)/threshold)',
  params,
  create: (name, p) => new LoadAwareScorer(name, p.threshold),
};
