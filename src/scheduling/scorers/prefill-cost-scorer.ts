/**
 * prefill-cost-scorer (kvroute's own, after Dynamo's cost model): prefers the endpoint where the
 * request would finish its prefill soonest, weighing locality and load in ONE unit, work:
 *
 *   cost_i  = uncached prompt tokens on i / tokensPerDecodeEquivalent   (prefill this request adds)
 *           + work already in flight on i (LoadTracker: uncomputed prefill tokens / T + requests)
 *   score_i = 1 - (cost_i - min cost) / max(max cost - min cost, minRange)      1 when all equal
 *
 * Uncached tokens come from the prefix prediction the prefix scorers memoized (precise when KV
 * events flow, else approximate); a common prefix every recent request shares (`commonBlocks`,
 * see src/prefix/common-prefix.ts) counts as cached everywhere, so it does not pull requests to
 * whichever endpoint saw it first. This scorer must come AFTER a prefix scorer in the profile;
 * without a prediction every endpoint counts the whole prompt (pure load balancing).
 *
 * Why one unit: a separate prefix score and load score meet only through their weights, which
 * are right for one prompt length and wrong for another (a 6,000-token shared system prompt is
 * worth far more queueing than a 200-token one). Here a long cached prefix keeps its request home
 * until the home endpoint's extra in-flight work exceeds the prefill it would cost elsewhere, and
 * a short one spreads at once. `minRange` keeps tiny gaps from swinging the score.
 *
 * Parameters:
 * - `minRange` (default 16 work units): the cost gap at which the score difference is full.
 * (T is the LoadTracker's `tokensPerDecodeEquivalent`, default 256.)
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { placementCachedTokensIn, prefixPredictionOf, promptTokensOf } from '../../prefix/prefix-prediction.js';
import type { LoadTracker } from '../load-tracker.js';
import { invertMinMaxWithFloor } from './inflight-load-scorer.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';

const params = z.strictObject({
  minRange: z.number().min(0).default(16),
  uncachedWeight: z.number().min(0).default(1),
});

/** Scores endpoints by prefill this request would add plus work in flight (lower is better). */
export class PrefillCostScorer implements Scorer {
  readonly type = 'prefill-cost-scorer';
  readonly #load: LoadTracker;

  constructor(
    readonly name: string,
    load: LoadTracker,
    readonly minRange = 16,
    readonly uncachedWeight = 1,
  ) {
    this.#load = load;
  }

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    const req = ctx.request;
    const n = candidates.length;
    const prompt = promptTokensOf(req);
    const t = this.#load.tokensPerDecodeEquivalent / this.uncachedWeight;
    const prediction = prefixPredictionOf(req);
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      const uncached = Math.max(0, prompt - placementCachedTokensIn(prediction, c, prompt));
      out[i] = uncached / t + this.#load.work(c);
    }
    invertMinMaxWithFloor(out, this.minRange);
  }
}

/** Registry entry of {@link PrefillCostScorer}. */
export const prefillCostScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'prefill-cost-scorer',
  kind: 'scorer',
  description: 'uncached prompt tokens this request would prefill there plus in-flight work, in one unit; min-max with a floor (1 = cheapest)',
  params,
  create: (name, p, deps) => new PrefillCostScorer(name, deps.load, p.minRange, p.uncachedWeight),
};
