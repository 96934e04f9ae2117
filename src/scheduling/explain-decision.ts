/**
 * Turns a profile run into an explanation: the top candidates with their raw per-scorer scores,
 * and the {@link DecisionReason}: the scorer whose WEIGHTED score separated the winner from the
 * runner-up the most ('tie-break' when their totals tie, 'picker' when the picker did not follow
 * the totals or no scorer separated them).
 */
import type { ProfileRun } from './profile-runner.js';
import type { CandidateScore, DecisionReason, SchedulingProfile } from './types.js';

/** How many candidates an explanation lists. */
export const EXPLAINED_CANDIDATES = 5;

const EPSILON = 1e-9;

/** The reason reported when `scorerType` made the difference. */
const REASON_BY_SCORER_TYPE: Readonly<Record<string, DecisionReason>> = {
  'prefix-cache-scorer': 'prefix-cache',
  'precise-prefix-cache-scorer': 'prefix-cache',
  'session-affinity-scorer': 'session-affinity',
  'kv-cache-utilization-scorer': 'kv-utilization',
  'queue-scorer': 'load',
  'load-aware-scorer': 'load',
  'inflight-load-scorer': 'load',
  'no-hit-lru-scorer': 'load',
  'no-hit-recent-work-scorer': 'load',
};

/** Explanation of one decision. */
export interface DecisionExplanation {
  readonly candidates: CandidateScore[];
  readonly reason: DecisionReason;
}

/** Builds the explanation of `run` under `profile`. */
export function explainDecision(profile: SchedulingProfile, run: ProfileRun): DecisionExplanation {
  const { candidates, order, totals, scores } = run;
  if (run.single) {
    return { candidates: [{ endpointId: candidates[0].id, total: 0, scores: {} }], reason: 'single-candidate' };
  }
  const scorers = profile.scorers;
  const top: CandidateScore[] = [];
  const m = Math.min(EXPLAINED_CANDIDATES, order.length);
  for (let k = 0; k < m; k++) {
    const i = order[k];
    const raw: Record<string, number> = {};
    for (let s = 0; s < scorers.length; s++) raw[scorers[s].scorer.name] = scores[s][i];
    top.push({ endpointId: candidates[i].id, total: totals[i], scores: raw });
  }
  return { candidates: top, reason: reasonOf(profile, run) };
}

function reasonOf(profile: SchedulingProfile, run: ProfileRun): DecisionReason {
  const { order, totals, scores } = run;
  if (order.length < 2) return 'single-candidate';
  const w = order[0];
  const r = order[1];
  const gap = totals[w] - totals[r];
  if (Math.abs(gap) <= EPSILON) return profile.scorers.length === 0 ? 'picker' : 'tie-break';
  if (gap < 0) return 'picker';
  let best = -1;
  let bestSep = EPSILON;
  for (let s = 0; s < profile.scorers.length; s++) {
    const sep = profile.scorers[s].weight * (scores[s][w] - scores[s][r]);
    if (sep > bestSep) {
      bestSep = sep;
      best = s;
    }
  }
  if (best < 0) return 'picker';
  const type = profile.scorers[best].scorer.type;
  if (type === 'prefill-cost-scorer') {
    // Cost blends locality and load: it is locality when the winner holds more of the prompt.
    for (let s = 0; s < profile.scorers.length; s++) {
      if (REASON_BY_SCORER_TYPE[profile.scorers[s].scorer.type] === 'prefix-cache' && scores[s][w] > scores[s][r] + EPSILON) return 'prefix-cache';
    }
    return 'load';
  }
  return REASON_BY_SCORER_TYPE[type] ?? 'picker';
}
