/**
 * What the approximate prefix scorer predicted for one request, memoized on the request so other
 * plugins (the in-flight load tracker, the no-hit LRU scorer) can use it without redoing the work.
 */
import type { Endpoint } from '../core/endpoint.js';
import { estimateTokens, type InferenceRequest } from '../core/request.js';

/** Memo key under which {@link PrefixPrediction} is stored on `InferenceRequest.memo`. */
export const PREFIX_PREDICTION_MEMO_KEY = 'prefix-cache-scorer/prediction';

/** Predicted cached prefix per candidate, from the approximate or the precise index. */
export interface PrefixPrediction {
  /** Which scorer made it; a precise prediction is never overwritten by an approximate one. */
  readonly source: 'approximate' | 'precise';
  /** Blocks of the request considered (capped at maxPrefixBlocksToMatch). */
  readonly totalBlocks: number;
  /** Prompt tokens per block (approximate: 64 characters = ~16 tokens; precise: the engine's block size). */
  readonly blockTokens: number;
  /** Matched leading blocks, indexed by `Endpoint.index` (0 beyond its length). */
  readonly matchedByIndex: Int32Array;
  /** Ids of the endpoints the prediction was made for, indexed by `Endpoint.index`. */
  readonly idsByIndex: readonly (string | undefined)[];
  /** True when at least one candidate matched at least one block. */
  readonly anyHit: boolean;
  /** Exact prompt tokens when the scorer tokenized the request (precise); absent = estimate. */
  readonly promptTokens?: number;
  /**
   * Leading blocks shared by (nearly) every recent request (CommonPrefixTracker); for placement
   * they count as held by every candidate. 0 / absent = no discount.
   */
  readonly commonBlocks?: number;
}

/** Prompt tokens of `req`: exact when a precise prediction tokenized it, else ~4 characters per token. */
export function promptTokensOf(req: InferenceRequest): number {
  return prefixPredictionOf(req)?.promptTokens ?? estimateTokens(req.promptText);
}

/** The request's memoized prefix prediction, if the prefix scorer ran on it. */
export function prefixPredictionOf(req: InferenceRequest): PrefixPrediction | undefined {
  return req.memo.get(PREFIX_PREDICTION_MEMO_KEY) as PrefixPrediction | undefined;
}

/**
 * Predicted cached prompt tokens of `req` on `endpoint` (0 when unknown), never more than
 * `promptTokens`.
 */
export function predictedCachedTokens(req: InferenceRequest, endpoint: Endpoint, promptTokens: number): number {
  const p = prefixPredictionOf(req);
  if (p === undefined) return 0;
  const idx = endpoint.index;
  if (idx >= p.matchedByIndex.length || p.idsByIndex[idx] !== endpoint.id) return 0;
  return Math.min(promptTokens, p.matchedByIndex[idx] * p.blockTokens);
}

/**
 * Cached prompt tokens of `req` on `endpoint` FOR PLACEMENT: the common prefix
 * ({@link PrefixPrediction.commonBlocks}) counts as held everywhere, so only the request-specific
 * part of a match tells endpoints apart. Load accounting keeps {@link predictedCachedTokens}.
 */
export function placementCachedTokens(req: InferenceRequest, endpoint: Endpoint, promptTokens: number): number {
  return placementCachedTokensIn(prefixPredictionOf(req), endpoint, promptTokens);
}

/** {@link placementCachedTokens} from the prediction itself (a scorer looping over candidates reads the memo once). */
export function placementCachedTokensIn(p: PrefixPrediction | undefined, endpoint: Endpoint, promptTokens: number): number {
  if (p === undefined) return 0;
  const idx = endpoint.index;
  const m = idx < p.matchedByIndex.length && p.idsByIndex[idx] === endpoint.id ? p.matchedByIndex[idx] : 0;
  return Math.min(promptTokens, Math.max(m, p.commonBlocks ?? 0) * p.blockTokens);
}

/** True when some candidate holds more of the request than its common prefix (a placement hit). */
export function hasPlacementHit(p: PrefixPrediction): boolean {
  if (!p.anyHit) return false;
  const common = p.commonBlocks ?? 0;
  if (common === 0) return true;
  for (let i = 0; i < p.matchedByIndex.length; i++) if (p.idsByIndex[i] !== undefined && p.matchedByIndex[i] > common) return true;
  return false;
}

/** Stores `p` on the request unless a precise prediction is there and `p` is approximate. */
export function setPrefixPrediction(req: InferenceRequest, p: PrefixPrediction): void {
  if (p.source === 'approximate' && prefixPredictionOf(req)?.source === 'precise') return;
  req.memo.set(PREFIX_PREDICTION_MEMO_KEY, p);
}
