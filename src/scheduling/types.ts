/**
 * Contracts of the scheduling framework (after llm-d's endpoint picker):
 *
 *   request -> profile handler -> for each profile: filters -> weighted scorers -> picker
 *
 * - A {@link Filter} returns the endpoints it keeps and never mutates its input.
 * - A {@link Scorer} writes a score in [0, 1] per candidate into a preallocated array. Weights
 *   live in the profile, never in the scorer.
 * - A {@link Picker} ranks candidates from the weighted totals (best first); randomness is injected.
 * - Any plugin may also observe the request's life ({@link RequestObserver}) to keep its own
 *   state (what was routed where, in-flight work, session bindings).
 */
import type { Endpoint } from '../core/endpoint.js';
import type { InferenceRequest } from '../core/request.js';

/** What every plugin gets for one scheduling cycle. */
export interface SchedulingContext {
  readonly request: InferenceRequest;
  /** Clock time (ms) the cycle started. */
  readonly now: number;
  /**
   * The profile being run, when the scheduler runs more than one (P/D). Plugins that share data
   * inside a profile read and write it through `request.memo`, which the scheduler scopes per
   * profile (see scheduling/profiles/cycle-state.ts); this is informational.
   */
  readonly profile?: string;
}

export interface Plugin {
  /** Plugin type id, kebab-case with its kind as suffix (`prefix-cache-scorer`). */
  readonly type: string;
  /** Instance name (the `name` in config, defaults to the type). */
  readonly name: string;
}

export interface Filter extends Plugin {
  filter(ctx: SchedulingContext, candidates: readonly Endpoint[]): readonly Endpoint[];
}

export interface Scorer extends Plugin {
  /**
   * Writes a score in [0, 1] for `candidates[i]` into `out[i]` (`out` is zeroed, same length).
   * Returns a promise only when it must wait (e.g. on a remote index).
   */
  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void | Promise<void>;
}

export interface Picker extends Plugin {
  /** Candidate indices ranked best first (primary, then fallbacks); at least one when non-empty. */
  pick(ctx: SchedulingContext, candidates: readonly Endpoint[], totals: Float64Array): number[];
}

/** What happened to a request after it was sent, for plugins that learn from outcomes. */
export interface RequestOutcome {
  /** True when the endpoint produced a complete response. */
  ok: boolean;
  /** HTTP status from the endpoint (0 when it never answered). */
  status: number;
  promptTokens?: number;
  /** Engine-reported cached prompt tokens (`usage.prompt_tokens_details.cached_tokens`). */
  cachedTokens?: number;
  completionTokens?: number;
}

/** Optional lifecycle hooks; the scheduler calls them on every plugin that has them. */
export interface RequestObserver {
  /** The request was assigned to `endpoint` (called at pick time, before it is sent). */
  onPicked?(ctx: SchedulingContext, endpoint: Endpoint): void;
  /** The first response byte/token came back (prefill done). */
  onFirstToken?(ctx: SchedulingContext, endpoint: Endpoint): void;
  /** The request finished (success or failure); called exactly once per pick. */
  onComplete?(ctx: SchedulingContext, endpoint: Endpoint, outcome: RequestOutcome): void;
}

/** A scorer with its weight inside a profile. */
export interface WeightedScorer {
  readonly scorer: Scorer;
  readonly weight: number;
}

export interface SchedulingProfile {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly scorers: readonly WeightedScorer[];
  readonly picker: Picker;
}

/** One candidate's scores, for explanations, metrics and the dashboard. */
export interface CandidateScore {
  endpointId: string;
  /** Weighted total. */
  total: number;
  /** Raw (unweighted) score per scorer name, in [0, 1]. */
  scores: Record<string, number>;
}

/** Why the winner won, for metrics labels and explanations. */
export type DecisionReason =
  | 'single-candidate'
  | 'prefix-cache'
  | 'session-affinity'
  | 'load'
  | 'kv-utilization'
  | 'tie-break'
  | 'picker';

/** What the prefill decider said (P/D only). */
export interface PdDecision {
  /** The decider plugin's name ('' when none is configured). */
  readonly decider: string;
  /** True when the request is served by a prefill endpoint then the decode endpoint. */
  readonly disaggregate: boolean;
  /** Why, in a few words (`non-cached 812 >= 16`, `no prefill endpoint`, ...). */
  readonly reason: string;
  /** Prompt tokens the decider saw. */
  readonly promptTokens: number;
  /** Prompt tokens predicted cached on the chosen decode endpoint. */
  readonly cachedTokens: number;
}

/** The prefill pick of a disaggregated request. */
export interface PrefillPick {
  /** The profile that chose it. */
  readonly profile: string;
  readonly endpoint: Endpoint;
  /** Prefill candidates ranked best first (`ranked[0] === endpoint`). */
  readonly ranked: readonly Endpoint[];
}

export interface SchedulingResult {
  /** The profile that produced the primary pick. */
  readonly profile: string;
  /** Where to send the request. */
  readonly endpoint: Endpoint;
  /** All candidates ranked best first (`ranked[0] === endpoint`); the rest are retry fallbacks. */
  readonly ranked: readonly Endpoint[];
  /** Top candidates with per-scorer scores (at most 5), best first. */
  readonly candidates: readonly CandidateScore[];
  readonly reason: DecisionReason;
  /** Time spent scheduling (ms). */
  readonly durationMs: number;
  /**
   * Present when a prefill endpoint was chosen (disaggregated serving): run the prefill leg
   * there, then decode on `endpoint`. The gateway reports its first token / completion through
   * the same `onFirstToken` / `onComplete` calls, passing `prefill.endpoint`.
   */
  readonly prefill?: PrefillPick;
  /** The prefill decider's verdict (disagg-profile-handler only). */
  readonly pd?: PdDecision;
}

/**
 * The scheduler as the gateway uses it. A pick opens a request's life in every observer;
 * the gateway reports first token and completion, and may re-assign to a fallback endpoint
 * (`reassign`) when the first one refused the connection.
 */
export interface Scheduler {
  /** Chooses an endpoint among `endpoints` (already the healthy ones serving the model). */
  schedule(request: InferenceRequest, endpoints: readonly Endpoint[]): Promise<SchedulingResult>;
  /** Moves an in-flight request to another endpoint (retry on connect failure). */
  reassign(request: InferenceRequest, from: Endpoint, to: Endpoint): void;
  onFirstToken(request: InferenceRequest, endpoint: Endpoint): void;
  onComplete(request: InferenceRequest, endpoint: Endpoint, outcome: RequestOutcome): void;
}
