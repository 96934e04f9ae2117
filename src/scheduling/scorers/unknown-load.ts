/**
 * How load scorers treat an endpoint whose load data is unknown: a stale snapshot (its /metrics
 * is slow or failing while it answers /health, e.g. llama.cpp during a long prefill), or a gauge
 * the engine does not report (`kvUsageUnknown`). Such a candidate gets the mean score of the
 * candidates whose data is known (the same constant for all when none is known), so it is
 * neither favoured nor penalised by that scorer: the scorer's weight effectively moves to the
 * others for that decision.
 */
import type { Endpoint } from '../../core/endpoint.js';

/** True when the candidate's load snapshot is stale (the scraper marks never-scraped ones stale too). */
export function loadUnknown(ep: Endpoint): boolean {
  return ep.metrics.stale === true;
}

/**
 * Replaces `out[i]` of every candidate with `unknown(i)` true by the mean of the known scores,
 * or by `allUnknown` when no candidate is known.
 */
export function neutralizeUnknown(candidates: readonly Endpoint[], out: Float64Array, unknown: (ep: Endpoint) => boolean, allUnknown: number): void {
  let sum = 0;
  let known = 0;
  let anyUnknown = false;
  for (let i = 0; i < candidates.length; i++) {
    if (unknown(candidates[i])) anyUnknown = true;
    else {
      sum += out[i];
      known++;
    }
  }
  if (!anyUnknown) return;
  const v = known > 0 ? sum / known : allUnknown;
  for (let i = 0; i < candidates.length; i++) if (unknown(candidates[i])) out[i] = v;
}
