/**
 * queue-scorer (llm-d's formula): prefers endpoints with fewer requests waiting in the engine
 * queue, min-max normalised over the candidates:
 *
 *   q_i     = metrics.waiting of candidate i (from the latest scrape)
 *   score_i = (max q - q_i) / (max q - min q)      1 when every candidate has the same q
 *
 * Relative, not absolute: the shortest queue always gets 1 and the longest 0. No parameters.
 * A candidate with stale load data is left out of min/max and scores the mean of the others
 * (unknown-load.ts).
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';
import { neutralizeUnknown } from './unknown-load.js';

const params = z.strictObject({});

/** Scores shorter engine queues higher (min-max over candidates). */
export class QueueScorer implements Scorer {
  readonly type = 'queue-scorer';
  constructor(readonly name: string = 'queue-scorer') {}

  score(_ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    const n = candidates.length;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const m = candidates[i].metrics;
      if (m.stale === true) continue;
      const q = m.waiting;
      if (q < min) min = q;
      if (q > max) max = q;
    }
    const range = max - min;
    for (let i = 0; i < n; i++) out[i] = range > 0 ? (max - candidates[i].metrics.waiting) / range : 1;
    neutralizeUnknown(candidates, out, false, 1);
  }
}

/** Registry entry of {@link QueueScorer}. */
export const queueScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'queue-scorer',
  kind: 'scorer',
  description: 'min-max over candidates of waiting requests: (max-q)/(max-min), 1 if all equal',
  params,
  create: (name) => new QueueScorer(name),
};
