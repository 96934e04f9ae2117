/**
 * The JSON shape of one routing decision, as `/debug/decisions` and the dashboard serve it, and
 * the filters `/debug/decisions` accepts.
 */
import type { CandidateScore } from '../../scheduling/types.js';
import type { DecisionRecord } from '../openai/gateway.js';
import type { CacheStatusLabel } from '../../metrics/router-metrics.js';

/** One decision as served by the admin port. */
export interface DecisionJson {
  requestId: string;
  model: string;
  /** Clock time (ms) the request arrived. */
  at: number;
  /** The endpoint the scheduler chose. */
  chosen: string;
  /** The endpoint that served it (differs from `chosen` after a connect-refused retry). */
  servedBy: string;
  status: number;
  reason: string;
  profile: string;
  schedulingMs: number;
  cacheStatus: string;
  predictedCachedTokens: number | null;
  routerPromptTokens: number | null;
  /** Engine-reported (usage). */
  cachedTokens: number | null;
  promptTokens: number | null;
  ttftMs: number | null;
  durationMs: number | null;
  candidates: readonly CandidateScore[];
}

/** Converts a record to its JSON shape. */
export function decisionJson(d: DecisionRecord): DecisionJson {
  return {
    requestId: d.requestId,
    model: d.model,
    at: d.at,
    chosen: d.result.endpoint.id,
    servedBy: d.servedBy,
    status: d.status,
    reason: d.result.reason,
    profile: d.result.profile,
    schedulingMs: d.result.durationMs,
    cacheStatus: d.cacheStatus ?? 'unknown',
    predictedCachedTokens: d.predictedCachedTokens ?? null,
    routerPromptTokens: d.routerPromptTokens ?? null,
    cachedTokens: d.cachedTokens ?? null,
    promptTokens: d.promptTokens ?? null,
    ttftMs: d.ttftMs ?? null,
    durationMs: d.durationMs ?? null,
    candidates: d.result.candidates,
  };
}

/** Filters of `/debug/decisions`. */
export interface DecisionFilter {
  /** Keep the newest `limit` matches. */
  limit?: number;
  /** Chosen or serving endpoint id. */
  endpoint?: string;
  reason?: string;
  status?: number;
  cacheStatus?: string;
  model?: string;
  requestId?: string;
}

/** Values of the `cache` filter: the predicted cache statuses. */
export const CACHE_VALUES = ['hit', 'partial', 'miss', 'unknown'] as const satisfies readonly CacheStatusLabel[];

/** Parses `?limit=&endpoint=&reason=&status=&cache=&model=&requestId=`; returns an error text for a bad value. */
export function parseDecisionFilter(params: URLSearchParams): DecisionFilter | string {
  const f: DecisionFilter = {};
  const limit = params.get('limit');
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1) return `limit must be a positive integer, got "${limit}"`;
    f.limit = n;
  }
  const status = params.get('status');
  if (status !== null) {
    const n = Number(status);
    if (!Number.isInteger(n) || n < 0 || n > 999) return `status must be an HTTP status code, got "${status}"`;
    f.status = n;
  }
  const cache = params.get('cache');
  if (cache !== null && cache !== '' && !(CACHE_VALUES as readonly string[]).includes(cache)) {
    return `cache must be one of ${CACHE_VALUES.join(', ')}, got "${cache.slice(0, 40)}"`;
  }
  for (const [k, key] of [['endpoint', 'endpoint'], ['reason', 'reason'], ['cache', 'cacheStatus'], ['model', 'model'], ['requestId', 'requestId']] as const) {
    const v = params.get(k);
    if (v !== null && v !== '') f[key] = v;
  }
  return f;
}

/** Applies a filter to records (oldest first in, oldest first out). */
export function filterDecisions(records: readonly DecisionRecord[], f: DecisionFilter): DecisionRecord[] {
  const out = records.filter(
    (d) =>
      (f.endpoint === undefined || d.servedBy === f.endpoint || d.result.endpoint.id === f.endpoint) &&
      (f.reason === undefined || d.result.reason === f.reason) &&
      (f.status === undefined || d.status === f.status) &&
      (f.cacheStatus === undefined || (d.cacheStatus ?? 'unknown') === f.cacheStatus) &&
      (f.model === undefined || d.model === f.model) &&
      (f.requestId === undefined || d.requestId === f.requestId),
  );
  return f.limit !== undefined && out.length > f.limit ? out.slice(out.length - f.limit) : out;
}
