/**
 * no-hit-lru-scorer (after llm-d's): spreads COLD prefixes. When no candidate has a prefix hit
 * for the request (per the prefix-cache-scorer's memoized prediction, so it must come after that
 * scorer in the profile; without a prediction every request counts as cold), it prefers the
 * endpoints least recently picked for a cold request, so new prefixes seed different endpoints
 * instead of all landing where load happens to be lowest at the instant.
 *
 *   cold request:  s_i = sequence number of i's last cold pick (-1 = never)
 *                  score_i = (max s - s_i) / (max s - min s)   1 when all equal
 *   warm request (some candidate has a hit): score_i = 0 for all (neutral)
 *
 * No parameters.
 */
import { z } from 'zod';
import type { RemotePick } from '../../sync/remote-pick.js';
import type { Endpoint } from '../../core/endpoint.js';
import { isColdRequest } from './cold-request.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { RequestObserver, Scorer, SchedulingContext } from '../types.js';

const params = z.strictObject({});

/** Prefers least-recently-used endpoints for requests no endpoint has cached. */
export class NoHitLruScorer implements Scorer, RequestObserver {
  readonly type = 'no-hit-lru-scorer';
  #lastCold = new Float64Array(16).fill(-1);
  #ids: (string | undefined)[] = [];
  #seq = 0;

  constructor(readonly name: string = 'no-hit-lru-scorer') {}

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    const n = candidates.length;
    if (!isColdRequest(ctx.request)) {
      out.fill(0);
      return;
    }
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = this.#lastOf(candidates[i]);
      out[i] = s;
      if (s < min) min = s;
      if (s > max) max = s;
    }
    const range = max - min;
    for (let i = 0; i < n; i++) out[i] = range > 0 ? (max - out[i]) / range : 1;
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    if (isColdRequest(ctx.request)) this.#seed(endpoint);
  }

  /** Another router replica's cold pick counts as one here (src/sync). */
  applyRemotePick(pick: RemotePick): void {
    if (pick.cold) this.#seed(pick.endpoint);
  }

  #seed(endpoint: Endpoint): void {
    const i = endpoint.index;
    if (i >= this.#lastCold.length) {
      let len = this.#lastCold.length;
      while (len <= i) len *= 2;
      const a = new Float64Array(len).fill(-1);
      a.set(this.#lastCold);
      this.#lastCold = a;
    }
    this.#ids[i] = endpoint.id;
    this.#lastCold[i] = ++this.#seq;
  }

  #lastOf(e: Endpoint): number {
    const i = e.index;
    return i < this.#lastCold.length && this.#ids[i] === e.id ? this.#lastCold[i] : -1;
  }
}

/** Registry entry of {@link NoHitLruScorer}. */
export const noHitLruScorerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'no-hit-lru-scorer',
  kind: 'scorer',
  description: 'when no candidate has a prefix hit, prefers endpoints least recently picked for a cold request',
  params,
  create: (name) => new NoHitLruScorer(name),
};
