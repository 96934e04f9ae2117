/**
 * least-request-scorer: Envoy's LEAST_REQUEST load balancer as a scorer, on the router's OWN
 * count of requests in flight per endpoint (LoadTracker, updated at pick and completion: no
 * scrape, no staleness). With equal weights Envoy picks "power of two choices": `choiceCount`
 * random candidates, the one with the fewest active requests wins.
 *
 *   sample  = choiceCount distinct candidates at random (all of them when choiceCount is 0 or
 *             at least the candidate count: a full least-request scan); the draw is seeded by
 *             the request id and a seed taken once from the injected rng, so scoring the same
 *             request twice gives the same sample (random across requests, deterministic per one)
 *   score_i = 1 for the sampled candidates with the fewest in-flight requests, 0.5 for the other
 *             sampled ones, 0 for the rest (max-score-picker breaks ties at random)
 *
 * Parameters: `choiceCount` (default 2, Envoy's `least_request_lb_config.choice_count`).
 * No cache awareness: a baseline.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { seededRng, type Rng } from '../../core/rng.js';
import type { LoadTracker } from '../load-tracker.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';

const params = z.strictObject({
  choiceCount: z.number().int().min(0).max(1024).default(2),
});

/** Envoy-style least-request scorer; see the file comment. */
export class LeastRequestScorer implements Scorer {
  readonly type = 'least-request-scorer';

  readonly #seed: number;

  constructor(
    readonly name: string,
    private readonly load: LoadTracker,
    rng: Rng,
    readonly choiceCount = 2,
  ) {
    this.#seed = Math.floor(rng.next() * 2 ** 32);
  }

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    let h = this.#seed ^ 0x811c9dc5;
    for (let i = 0; i < ctx.request.id.length; i++) h = Math.imul(h ^ ctx.request.id.charCodeAt(i), 0x01000193);
    const draw = seededRng(h >>> 0);
    const n = candidates.length;
    out.fill(0);
    const k = this.choiceCount === 0 || this.choiceCount >= n ? n : this.choiceCount;
    // Partial Fisher-Yates over candidate positions picks k distinct ones.
    const idx = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k && k < n; i++) {
      const j = i + Math.floor(draw.next() * (n - i));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    let best = Infinity;
    for (let i = 0; i < k; i++) best = Math.min(best, this.load.load(candidates[idx[i]]).inflight);
    for (let i = 0; i < k; i++) out[idx[i]] = this.load.load(candidates[idx[i]]).inflight === best ? 1 : 0.5;
  }
}

/** Registry entry of {@link LeastRequestScorer}. */
export const leastRequestScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'least-request-scorer',
  kind: 'scorer',
  description: "Envoy LEAST_REQUEST on the router's own in-flight request count (power of two choices by default)",
  params,
  create: (name, p, deps) => new LeastRequestScorer(name, deps.load, deps.rng, p.choiceCount),
};
