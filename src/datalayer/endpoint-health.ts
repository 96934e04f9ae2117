/**
 * An endpoint's health from what the scraper saw (a pure function; the scraper applies it):
 * live = answered /health or /metrics within `deadAfterMs` and not refusing connections;
 * healthy = live and no engine problem; load fresh = a good /metrics scrape within
 * `staleAfterMs` (a healthy endpoint with stale load stays routable, its load unknown);
 * silent = answered before, now past the liveness bound while accepting connections (panic
 * routing may use it, EndpointPool). `reason` says why in words for logs, /readyz and 503s.
 */
import type { EndpointHealthState } from '../core/endpoint.js';

/** What the health is computed from (the scraper's per-endpoint state). */
export interface HealthInputs {
  lastLive: number;
  lastMetricsOk: number;
  refused: boolean;
  healthProblem: string;
  metricsProblem: string;
  engineProblem: string;
  override: boolean;
  detected: boolean;
  restarts: number;
}

export function endpointHealth(st: HealthInputs, now: number, url: string, bounds: { deadAfterMs: number; staleAfterMs: number }): { healthy: boolean; state: EndpointHealthState } {
  const live = !st.refused && st.lastLive > 0 && now - st.lastLive <= bounds.deadAfterMs;
  const fresh = st.lastMetricsOk > 0 && now - st.lastMetricsOk <= bounds.staleAfterMs;
  let reason = '';
  if (st.refused) reason = `connection refused at ${url}`;
  else if (!live) reason = st.lastLive === 0 ? `not answering yet${st.healthProblem ? `: ${st.healthProblem}` : st.metricsProblem ? `: ${st.metricsProblem}` : ''}` : `no answer on /health or /metrics for ${now - st.lastLive} ms${st.healthProblem ? ` (${st.healthProblem})` : ''}`;
  else if (st.engineProblem) reason = st.engineProblem;
  const healthy = reason === '';
  if (healthy && !fresh) {
    const last = st.lastMetricsOk > 0 ? `last good scrape ${now - st.lastMetricsOk} ms ago` : 'no good scrape yet';
    reason = `load data stale (${last}${st.metricsProblem ? `: ${st.metricsProblem}` : ''}); routing treats its load as unknown`;
  }
  const silent = !st.refused && !live && st.lastLive > 0 && !st.engineProblem;
  const state: EndpointHealthState = { live, loadFresh: fresh, reason, engineSource: st.override ? 'override' : st.detected ? 'detected' : 'default', restarts: st.restarts, ...(silent ? { silent } : {}) };
  return { healthy, state };
}
