/**
 * What the router predicted about the prefix cache for one decision, from the scores it already
 * computed. Both prefix scorers score a candidate with the fraction of the request's prompt it
 * is predicted to hold, so for the chosen endpoint:
 *
 *   prefixScore           = max over prefix-scorer types (prefix-cache-scorer,
 *                           precise-prefix-cache-scorer) of its raw score
 *   predictedCachedTokens = round(prefixScore x promptTokens)
 *   cacheStatus           = hit      when prefixScore >= 0.75   (most of the prompt is cached)
 *                           partial  when 0.1 <= prefixScore < 0.75
 *                           miss     when prefixScore < 0.1
 *                           unknown  when the profile has no prefix scorer, or scoring was
 *                                    skipped (a single candidate)
 *
 * `promptTokens` is the precise scorer's token count when it tokenized the request, else the
 * usual estimate (4 characters per token) of the rendered prompt.
 */
import { estimateTokens, type InferenceRequest } from '../core/request.js';
import { predictedCachedTokens, prefixPredictionOf } from '../prefix/prefix-prediction.js';
import type { CacheStatusLabel } from '../metrics/router-metrics.js';
import type { Scheduler, SchedulingResult } from '../scheduling/types.js';

/** Scorer types whose score is "fraction of the prompt predicted cached". */
export const PREFIX_SCORER_TYPES: ReadonlySet<string> = new Set(['prefix-cache-scorer', 'precise-prefix-cache-scorer']);
/** A prefix score at or above this is a predicted hit. */
export const HIT_THRESHOLD = 0.75;
/** A prefix score below this is a predicted miss. */
export const MISS_THRESHOLD = 0.1;

/** Memo key where the precise scorer keeps its prepared keys and token count. */
const PRECISE_PREPARED_MEMO = 'precise-prefix-cache-scorer/prepared';

/** The router's cache prediction for one decision. */
export interface CachePrediction {
  cacheStatus: CacheStatusLabel;
  /** Max prefix-scorer score of the chosen endpoint (undefined when unknown). */
  prefixScore: number | undefined;
  predictedCachedTokens: number | undefined;
  /** Prompt tokens the prediction is relative to (exact when tokenized, else estimated). */
  promptTokens: number;
}

/** Scorer name -> scorer type of a scheduler's profile (empty when it does not expose one). */
export function scorerTypesOf(scheduler: Scheduler): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  const profile = (scheduler as { profile?: { scorers?: ReadonlyArray<{ scorer: { name: string; type: string } }> } }).profile;
  for (const ws of profile?.scorers ?? []) out.set(ws.scorer.name, ws.scorer.type);
  return out;
}

/** Prompt tokens of a request: the precise scorer's exact count when present, else an estimate. */
export function promptTokensOf(req: InferenceRequest): number {
  const prep = req.memo.get(PRECISE_PREPARED_MEMO) as { tokens?: unknown } | undefined;
  if (prep !== undefined && typeof prep.tokens === 'number' && prep.tokens > 0) return prep.tokens;
  return estimateTokens(req.promptText);
}

/** Maps a prefix score to a cache status (see the file comment). */
export function cacheStatusOf(prefixScore: number | undefined): CacheStatusLabel {
  if (prefixScore === undefined || !Number.isFinite(prefixScore)) return 'unknown';
  if (prefixScore >= HIT_THRESHOLD) return 'hit';
  if (prefixScore >= MISS_THRESHOLD) return 'partial';
  return 'miss';
}

/**
 * The cache prediction for the endpoint `result` chose. With `req`, when the precise scorer
 * memoized its block-exact prediction, the predicted tokens are its matched blocks x block size,
 * capped like vLLM (a prompt never hits on its last token: at most floor((n-1)/B) x B).
 */
export function predictCache(result: SchedulingResult, scorerTypes: ReadonlyMap<string, string>, promptTokens: number, req?: InferenceRequest): CachePrediction {
  const chosen = result.candidates.find((c) => c.endpointId === result.endpoint.id);
  let prefixScore: number | undefined;
  if (chosen !== undefined) {
    const scores = chosen.scores;
    for (const name in scores) {
      const score = scores[name];
      const type = scorerTypes.get(name);
      if (type !== undefined && PREFIX_SCORER_TYPES.has(type) && Number.isFinite(score)) {
        prefixScore = prefixScore === undefined ? score : Math.max(prefixScore, score);
      }
    }
  }
  const cacheStatus = cacheStatusOf(prefixScore);
  const precise = req !== undefined ? prefixPredictionOf(req) : undefined;
  if (precise !== undefined && precise.source === 'precise' && prefixScore !== undefined) {
    const bs = precise.blockTokens;
    const cap = promptTokens > 0 ? Math.floor((promptTokens - 1) / bs) * bs : 0;
    const tokens = Math.min(cap, predictedCachedTokens(req!, result.endpoint, promptTokens));
    return { cacheStatus, prefixScore, predictedCachedTokens: tokens, promptTokens };
  }
  return {
    cacheStatus,
    prefixScore,
    predictedCachedTokens: prefixScore === undefined ? undefined : Math.round(Math.min(1, Math.max(0, prefixScore)) * promptTokens),
    promptTokens,
  };
}
