/**
 * Contracts of profile handlers and prefill/decode deciders (after llm-d's
 * `single-profile-handler`, `disagg-profile-handler`, `prefix-based-pd-decider`).
 *
 * A profile handler says which scheduling profiles run for a request and in which order:
 *
 *   single:  the one profile -> primary pick
 *   disagg:  decode profile -> primary pick (the decode endpoint)
 *            -> prefill decider(ctx of the decode profile, decode endpoint)
 *            -> when it says yes: prefill profile -> prefill pick
 *
 * Handlers are data the scheduler interprets (scheduler.ts), not code paths of their own, so
 * the request lifecycle stays in one place.
 */
import type { Endpoint } from '../../core/endpoint.js';
import type { Plugin, SchedulingContext } from '../types.js';

/** A profile handler's resolved settings. */
export interface ProfileHandler extends Plugin {
  readonly mode: 'single' | 'disagg';
  /** disagg: name of the decode profile (default `decode`). */
  readonly decodeProfile?: string;
  /** disagg: name of the prefill profile (default `prefill`). */
  readonly prefillProfile?: string;
  /** disagg: instance name of the prefill decider; absent = decode only. */
  readonly prefillDecider?: string;
}

/** A decider's verdict. */
export interface PdVerdict {
  readonly disaggregate: boolean;
  /** A few words, for logs, metrics labels and explanations. */
  readonly reason: string;
  readonly promptTokens: number;
  readonly cachedTokens: number;
}

/**
 * Decides, after the decode pick, whether the prompt is prefilled on a separate endpoint.
 * `ctx.request.memo` is the decode profile's, so the prefix prediction read there is the one
 * made for the decode candidates.
 */
export interface PdDecider extends Plugin {
  decide(ctx: SchedulingContext, decode: Endpoint): PdVerdict;
}
