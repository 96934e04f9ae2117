/**
 * Decision explanations on request. A client sends `x-kvroute-explain: 1` (or `2`..`5`: how many
 * candidates to list, default 3) and gets back the response header `x-kvroute-explain` holding
 * compact JSON:
 *
 *   {"endpoint":"10.0.0.11:8000","reason":"prefix-cache","profile":"default","cache":"hit",
 *    "prefixScore":0.94,"predictedCachedTokens":480,"promptTokens":512,"schedulingMs":0.21,
 *    "candidates":[{"id":"10.0.0.11:8000","total":3.82,"scores":{"prefix-cache-scorer":0.94,...}}, ...]}
 *
 * Scores are rounded to 3 decimals; non-ASCII characters are \u-escaped so the value is a legal
 * header; candidates are dropped from the end until the value fits {@link MAX_EXPLAIN_BYTES}.
 * Streaming responses additionally end with an SSE comment line (ignored by SSE clients):
 *
 *   : kvroute-explain {"servedBy":"...","cachedTokens":480,"promptTokens":512,"ttftMs":12.3,...}
 */
import type { SchedulingResult } from '../scheduling/types.js';
import type { CachePrediction } from './cache-prediction.js';

/** Request header that asks for an explanation; also the response header carrying it. */
export const EXPLAIN_HEADER = 'x-kvroute-explain';
/** Largest explanation header value (bytes). */
export const MAX_EXPLAIN_BYTES = 4096;
/** Candidates listed when the request header is `1` / `true`. */
export const DEFAULT_EXPLAIN_CANDIDATES = 3;

/** The explanation object (also what `/debug/decisions` items look like, in part). */
export interface Explanation {
  endpoint: string;
  reason: string;
  profile: string;
  cache: string;
  prefixScore?: number;
  predictedCachedTokens?: number;
  promptTokens: number;
  schedulingMs: number;
  candidates: Array<{ id: string; total: number; scores: Record<string, number> }>;
}

/**
 * How many candidates the request asked for: 0 = no explanation. Accepts `1`, `true`, `yes`
 * (default count) or a count 2..5; anything else is ignored (no explanation, no error).
 */
export function explainRequested(value: string | undefined): number {
  if (value === undefined) return 0;
  const v = value.trim().toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes' || v === 'on') return DEFAULT_EXPLAIN_CANDIDATES;
  const n = Number(v);
  return Number.isInteger(n) && n >= 2 && n <= 5 ? n : 0;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Builds the explanation of a decision, listing at most `maxCandidates` candidates. */
export function buildExplanation(result: SchedulingResult, prediction: CachePrediction, maxCandidates: number): Explanation {
  const e: Explanation = {
    endpoint: result.endpoint.id,
    reason: result.reason,
    profile: result.profile,
    cache: prediction.cacheStatus,
    promptTokens: prediction.promptTokens,
    schedulingMs: r3(result.durationMs),
    candidates: result.candidates.slice(0, Math.max(0, maxCandidates)).map((c) => {
      const scores: Record<string, number> = {};
      for (const [k, v] of Object.entries(c.scores)) scores[k] = r3(v);
      return { id: c.endpointId, total: r3(c.total), scores };
    }),
  };
  if (prediction.prefixScore !== undefined) e.prefixScore = r3(prediction.prefixScore);
  if (prediction.predictedCachedTokens !== undefined) e.predictedCachedTokens = prediction.predictedCachedTokens;
  return e;
}

/** JSON with every character outside printable ASCII escaped (a legal HTTP header value). */
export function asciiJson(obj: unknown): string {
  return JSON.stringify(obj).replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Encodes an explanation as a header value of at most `maxBytes`, dropping candidates as needed. */
export function encodeExplanation(e: Explanation, maxBytes = MAX_EXPLAIN_BYTES): string {
  const copy: Explanation = { ...e, candidates: [...e.candidates] };
  let s = asciiJson(copy);
  while (s.length > maxBytes && copy.candidates.length > 0) {
    copy.candidates.pop();
    s = asciiJson(copy);
  }
  if (s.length > maxBytes) {
    s = asciiJson({ endpoint: e.endpoint.slice(0, 200), reason: e.reason, cache: e.cache, truncated: true });
  }
  return s;
}

/** The trailing SSE comment of an explained streaming response. */
export function sseExplainComment(info: Record<string, unknown>): string {
  return `: kvroute-explain ${asciiJson(info)}\n\n`;
}
