/**
 * no-hit-recent-work-scorer (kvroute's own): places COLD prefixes where the least work was routed
 * lately, so that prefix families, not just requests, end up balanced.
 *
 * Why: once a prefix is cached somewhere, its later requests follow it there (that is what the
 * prefix scorers are for). So the endpoint a cold request seeds inherits the future traffic of
 * that prefix, and the right signal for the choice is the endpoint's share of the traffic it is
 * committed to, not its in-flight load at this instant (which only reflects the last few seconds
 * and is close to noise at the moment a family is seeded). Recent routed work, decayed
 * exponentially, measures that share.
 *
 *   every pick:    w_i += uncached prompt tokens on i / T + 1      (T: LoadTracker's unit, 256)
 *                  w decays by half every `halfLifeSeconds`
 *   cold request:  score_i = 1 - (w_i - min w) / max(max w - min w, minRange)
 *   warm request (some candidate has a prefix hit, or the request's session is bound to one; see
 *   cold-request.ts): score_i = 0 for all (neutral)
 *
 * It must come after the prefix and session scorers in the profile (it reads their memos; without
 * a prefix scorer every request counts as cold, and it becomes a slow load balancer).
 *
 * Parameters:
 * - `halfLifeSeconds` (default 60): how fast old work stops counting.
 * - `minRange` (default 16 work units): a smaller spread of recent work scores proportionally less.
 */
import { z } from 'zod';
import type { RemotePick } from '../../sync/remote-pick.js';
import type { Endpoint } from '../../core/endpoint.js';
import { predictedCachedTokens, promptTokensOf } from '../../prefix/prefix-prediction.js';
import { isColdRequest } from './cold-request.js';
import type { LoadTracker } from '../load-tracker.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { RequestObserver, Scorer, SchedulingContext } from '../types.js';
import { invertMinMaxWithFloor } from './inflight-load-scorer.js';

const params = z.strictObject({
  halfLifeSeconds: z.number().positive().default(60),
  minRange: z.number().min(0).default(16),
});

/** Prefers endpoints with the least recently routed work for requests no endpoint has cached. */
export class NoHitRecentWorkScorer implements Scorer, RequestObserver {
  readonly type = 'no-hit-recent-work-scorer';
  readonly #tau: number;
  #work = new Float64Array(16);
  #at = new Float64Array(16);
  #ids: (string | undefined)[] = [];

  constructor(
    readonly name: string,
    readonly load: LoadTracker,
    readonly halfLifeSeconds = 60,
    readonly minRange = 16,
  ) {
    this.#tau = (halfLifeSeconds * 1000) / Math.LN2;
  }

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    if (!isColdRequest(ctx.request)) {
      out.fill(0);
      return;
    }
    for (let i = 0; i < candidates.length; i++) out[i] = this.recentWork(candidates[i], ctx.now);
    invertMinMaxWithFloor(out, this.minRange);
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const prompt = promptTokensOf(ctx.request);
    this.#add(endpoint, Math.max(0, prompt - predictedCachedTokens(ctx.request, endpoint, prompt)), ctx.now);
  }

  /** Another router replica's pick adds its work here too (src/sync). */
  applyRemotePick(pick: RemotePick): void {
    this.#add(pick.endpoint, pick.uncachedTokens, pick.now);
  }

  #add(endpoint: Endpoint, uncached: number, now: number): void {
    const i = endpoint.index;
    if (i >= this.#work.length) this.#grow(i);
    const w = this.recentWork(endpoint, now);
    this.#ids[i] = endpoint.id;
    this.#work[i] = w + uncached / this.load.tokensPerDecodeEquivalent + 1;
    this.#at[i] = now;
  }

  /** Decayed work routed to `e`, as of `now` (ms). */
  recentWork(e: Endpoint, now: number): number {
    const i = e.index;
    if (i >= this.#work.length || this.#ids[i] !== e.id) return 0;
    const dt = now - this.#at[i];
    return dt > 0 ? this.#work[i] * Math.exp(-dt / this.#tau) : this.#work[i];
  }

  #grow(i: number): void {
    let len = this.#work.length;
    while (len <= i) len *= 2;
    const w = new Float64Array(len);
    w.set(this.#work);
    const a = new Float64Array(len);
    a.set(this.#at);
    this.#work = w;
    this.#at = a;
  }
}

/** Registry entry of {@link NoHitRecentWorkScorer}. */
export const noHitRecentWorkScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'no-hit-recent-work-scorer',
  kind: 'scorer',
  description: 'when no candidate has a prefix hit, prefers endpoints given the least work lately (decayed), so prefix families spread evenly',
  params,
  create: (name, p, deps) => new NoHitRecentWorkScorer(name, deps.load, p.halfLifeSeconds, p.minRange),
};
