/**
 * inflight-load-scorer (kvroute's own): prefers endpoints with the least work the ROUTER has in
 * flight on them, counted at pick time by the {@link LoadTracker} (so it reacts within a burst,
 * before any metrics scrape), in work units:
 *
 *   w_i = uncomputed prefill tokens / tokensPerDecodeEquivalent + in-flight requests
 *
 * normalised min-max over the candidates, with a floor on the range:
 *
 *   score_i = 1 - (w_i - min w) / max(max w - min w, minRange)      1 when all are equal
 *
 * With `minRange` 0 this is plain min-max, which is scale-free: a gap of one request would weigh
 * as much as a gap of a hundred, and any imbalance would override the prefix score. The floor
 * makes small gaps cost little and lets the penalty grow with the gap until it reaches
 * `minRange` work units, after which the most loaded candidate scores 0.
 *
 * Parameters:
 * - `minRange` (default 16 work units, ~16 in-flight requests or ~4k uncomputed prompt tokens):
 *   the gap at which the load penalty is full.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { LoadTracker } from '../load-tracker.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Scorer, SchedulingContext } from '../types.js';

/** Default work gap (units) at which the load penalty is full. */
export const DEFAULT_MIN_RANGE = 16;

const params = z.strictObject({
  minRange: z.number().min(0).default(DEFAULT_MIN_RANGE),
});

/** Scores endpoints with less router-tracked in-flight work higher. */
export class InflightLoadScorer implements Scorer {
  readonly type = 'inflight-load-scorer';
  readonly #load: LoadTracker;

  constructor(
    readonly name: string,
    load: LoadTracker,
    readonly minRange = DEFAULT_MIN_RANGE,
  ) {
    this.#load = load;
  }

  score(_ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    for (let i = 0; i < candidates.length; i++) out[i] = this.#load.work(candidates[i]);
    invertMinMaxWithFloor(out, this.minRange);
  }
}

/**
 * Turns costs in `out` (lower is better) into scores in [0, 1] in place:
 * `1 - (c - min) / max(max - min, minRange)`, all 1 when they are equal.
 */
export function invertMinMaxWithFloor(out: Float64Array, minRange: number): void {
  const n = out.length;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (out[i] < min) min = out[i];
    if (out[i] > max) max = out[i];
  }
  const range = Math.max(max - min, minRange);
  for (let i = 0; i < n; i++) out[i] = range > 0 ? 1 - (out[i] - min) / range : 1;
}

/** Registry entry of {@link InflightLoadScorer}. */
export const inflightLoadScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'inflight-load-scorer',
  kind: 'scorer',
  description: "router-tracked in-flight work, min-max with a floor on the range (1 = least work)",
  params,
  create: (name, p, deps) => new InflightLoadScorer(name, deps.load, p.minRange),
};
