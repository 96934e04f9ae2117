/**
 * What counts as a COLD request for the no-hit scorers: one that seeds a new home. A request is
 * warm when some candidate holds a prefix of it longer than the prefix (nearly) every request
 * shares (the prefix scorer's memoized prediction and its `commonBlocks`) or when
 * its session is already bound to a candidate (the session-affinity scorer's memo): either way it
 * has a home, and spreading it would only break locality. Both memos are written by scorers that
 * run earlier in the profile, so the no-hit scorers must come after them.
 */
import type { InferenceRequest } from '../../core/request.js';
import { hasPlacementHit, prefixPredictionOf } from '../../prefix/prefix-prediction.js';

/** Memo key: id of the candidate the request's session is bound to (set by session-affinity). */
export const SESSION_BOUND_MEMO_KEY = 'session-affinity/bound';

/**
 * True when no candidate holds any of the prompt beyond its common prefix and no session binding
 * names a candidate.
 */
export function isColdRequest(req: InferenceRequest): boolean {
  const p = prefixPredictionOf(req);
  return (p === undefined || !hasPlacementHit(p)) && !req.memo.has(SESSION_BOUND_MEMO_KEY);
}
