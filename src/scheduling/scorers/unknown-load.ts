/**
 * How load scorers treat an endpoint whose load data is unknown: a stale snapshot (its /metrics
 * is slow or failing while it answers /health, e.g. llama.cpp during a long prefill), or a gauge
 * the engine does not report (`kvUsageUnknown`). Such a candidate gets the mean score of the
 * candidates whose data is known (the same constant for all when none is known), so it is
 * neither favoured nor penalised by that scorer: the scorer's weight effectively moves to the
 * others for that decision.
 */
import type { Endpoint } from '../../core/endpoint.js';

/** Whether a candidate's data is unknown: its snapshot is stale, or also its KV usage is unreported (`kv`). */
function isUnknown(ep: Endpoint, kv: boolean): boolean {
  const m = ep.metrics;
  return m.stale === true || (kv && m.kvUsageUnknown === true);
}

/**
 * Replaces `out[i]` of every candidate whose data is unknown (stale; with `kv`, also an
 * unreported KV usage) by the mean of the known scores, or by `allUnknown` when none is known.
 */
export function neutralizeUnknown(candidates: readonly Endpoint[], out: Float64Array, kv: boolean, allUnknown: number): void {
  const n = candidates.length;
  let first = 0;
  while (first < n && !isUnknown(candidates[first], kv)) first++;
  if (first === n) return; // the common case: every candidate's data is known
  let sum = 0;
  let known = 0;
  for (let i = 0; i < n; i++) {
    if (i >= first && isUnknown(candidates[i], kv)) continue;
    sum += out[i];
    known++;
  }
  const v = known > 0 ? sum / known : allUnknown;
  for (let i = first; i < n; i++) if (isUnknown(candidates[i], kv)) out[i] = v;
}
