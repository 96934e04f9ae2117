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
 * Several router replicas (src/sync): each also applies the others' cold picks, but learns of
 * them only after the sync lag, so two replicas dealing within it can both give their cold
 * request to the same least-recently-picked endpoint (a collision), which then keeps one new
 * prefix family more than the others. Once another replica's cold pick has been applied, the
 * scorer also counts the last {@link DEAL_WINDOW} cold picks per endpoint (everyone's): when the
 * endpoint LRU would pick has been dealt more of them than the least-dealt candidate, every
 * candidate dealt more than that minimum scores as if picked last, so the next family goes to
 * the least recently picked of the least-dealt endpoints and the collision is paid back. Dealt in
 * turn without collisions, the least recently picked endpoint is always among the least-dealt in
 * any window of the last picks, so this changes nothing then; a single router never applies it.
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

/** Cold picks (all replicas') over which the multi-router correction counts deals. */
export const DEAL_WINDOW = 256;

/** Prefers least-recently-used endpoints for requests no endpoint has cached. */
export class NoHitLruScorer implements Scorer, RequestObserver {
  readonly type = 'no-hit-lru-scorer';
  #lastCold = new Float64Array(16).fill(-1);
  #ids: (string | undefined)[] = [];
  #seq = 0;
  /** Set by the first remote cold pick: the deal counts below are kept and read from then on. */
  #multi = false;
  /** Endpoint index of each of the last DEAL_WINDOW cold picks (a ring), and picks per index in it. */
  readonly #ring = new Int32Array(DEAL_WINDOW).fill(-1);
  #ringPos = 0;
  #dealt = new Int32Array(16);

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
    if (this.#multi && n > 1) {
      const m = this.#payBack(candidates, out, min, max);
      min = m.min;
      max = m.max;
    }
    const range = max - min;
    for (let i = 0; i < n; i++) out[i] = range > 0 ? (max - out[i]) / range : 1;
  }

  /**
   * The multi-router correction (see the file comment): when the candidate LRU would pick was
   * dealt more of the last cold picks than the least-dealt candidate, every candidate dealt more
   * than that minimum counts as picked last. `seqs` holds each candidate's last cold pick.
   */
  #payBack(candidates: readonly Endpoint[], seqs: Float64Array, min: number, max: number): { min: number; max: number } {
    const n = candidates.length;
    let lru = 0;
    let least = Infinity;
    for (let i = 0; i < n; i++) {
      if (seqs[i] < seqs[lru]) lru = i;
      const d = this.#dealtOf(candidates[i]);
      if (d < least) least = d;
    }
    if (this.#dealtOf(candidates[lru]) <= least) return { min, max };
    const last = max + 1;
    let lo = Infinity;
    for (let i = 0; i < n; i++) {
      if (this.#dealtOf(candidates[i]) > least) seqs[i] = last;
      if (seqs[i] < lo) lo = seqs[i];
    }
    return { min: lo, max: last };
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    if (isColdRequest(ctx.request)) this.#seed(endpoint);
  }

  /** Another router replica's cold pick counts as one here (src/sync). */
  applyRemotePick(pick: RemotePick): void {
    if (!pick.cold) return;
    this.#multi = true;
    this.#seed(pick.endpoint);
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
    if (this.#ids[i] !== endpoint.id) this.#forgetIndex(i);
    this.#ids[i] = endpoint.id;
    this.#lastCold[i] = ++this.#seq;
    // The deal window: the oldest pick leaves it, this one enters.
    if (i >= this.#dealt.length) {
      const d = new Int32Array(this.#lastCold.length);
      d.set(this.#dealt);
      this.#dealt = d;
    }
    const out = this.#ring[this.#ringPos];
    if (out >= 0) this.#dealt[out]--;
    this.#ring[this.#ringPos] = i;
    this.#dealt[i]++;
    this.#ringPos = (this.#ringPos + 1) % DEAL_WINDOW;
  }

  /** A new endpoint took index `i`: the picks of the one before it leave the deal window. */
  #forgetIndex(i: number): void {
    for (let k = 0; k < DEAL_WINDOW; k++) if (this.#ring[k] === i) this.#ring[k] = -1;
    if (i < this.#dealt.length) this.#dealt[i] = 0;
  }

  #lastOf(e: Endpoint): number {
    const i = e.index;
    return i < this.#lastCold.length && this.#ids[i] === e.id ? this.#lastCold[i] : -1;
  }

  #dealtOf(e: Endpoint): number {
    const i = e.index;
    return i < this.#dealt.length && this.#ids[i] === e.id ? this.#dealt[i] : 0;
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
