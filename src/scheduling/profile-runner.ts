/**
 * Runs one scheduling profile over the candidates: filters -> scorers -> weighted totals ->
 * picker. Score arrays are pooled Float64Arrays reused between requests (a pool, not one set, so
 * two requests whose scorers await at the same time never share buffers). A scorer is awaited
 * only when it returns a promise.
 */
import type { Endpoint } from '../core/endpoint.js';
import { KvrError } from '../core/errors.js';
import type { SchedulingContext, SchedulingProfile } from './types.js';

/** The outcome of running a profile; call `release()` once done reading the arrays. */
export interface ProfileRun {
  /** Candidates after the filters. */
  readonly candidates: readonly Endpoint[];
  /** Candidate indices ranked best first (from the picker). */
  readonly order: readonly number[];
  /** Weighted totals per candidate (empty when there was one candidate). */
  readonly totals: Float64Array;
  /** Raw scores per scorer (profile order) per candidate. */
  readonly scores: readonly Float64Array[];
  /** True when scoring was skipped (one candidate). */
  readonly single: boolean;
  release(): void;
}

interface Buffers {
  n: number;
  totals: Float64Array;
  scores: Float64Array[];
}

const EMPTY = new Float64Array(0);
const MAX_POOLED = 8;

/** Runs one {@link SchedulingProfile}; see the file comment. */
export class ProfileRunner {
  readonly profile: SchedulingProfile;
  #pool: Buffers[] = [];

  constructor(profile: SchedulingProfile) {
    this.profile = profile;
  }

  /** Runs the profile; returns a promise only when a scorer did. */
  run(ctx: SchedulingContext, endpoints: readonly Endpoint[]): ProfileRun | Promise<ProfileRun> {
    let candidates = endpoints;
    for (const f of this.profile.filters) {
      candidates = f.filter(ctx, candidates);
      if (candidates.length === 0) {
        throw new KvrError('KVR_ERR_NO_ENDPOINT', `filter "${f.name}" removed every endpoint (${endpoints.length} before it); relax the filter or add endpoints`);
      }
    }
    if (candidates.length === 1) {
      return { candidates, order: [0], totals: EMPTY, scores: [], single: true, release: () => {} };
    }
    const buf = this.#acquire(candidates.length);
    const scorers = this.profile.scorers;
    for (let s = 0; s < scorers.length; s++) {
      const r = scorers[s].scorer.score(ctx, candidates, buf.scores[s]);
      if (r instanceof Promise) return this.#finishAsync(ctx, candidates, buf, r, s);
    }
    return this.#finish(ctx, candidates, buf);
  }

  async #finishAsync(ctx: SchedulingContext, candidates: readonly Endpoint[], buf: Buffers, pending: Promise<void>, s: number): Promise<ProfileRun> {
    try {
      await pending;
      const scorers = this.profile.scorers;
      for (let k = s + 1; k < scorers.length; k++) {
        const r = scorers[k].scorer.score(ctx, candidates, buf.scores[k]);
        if (r instanceof Promise) await r;
      }
    } catch (err) {
      this.#release(buf);
      throw err;
    }
    return this.#finish(ctx, candidates, buf);
  }

  #finish(ctx: SchedulingContext, candidates: readonly Endpoint[], buf: Buffers): ProfileRun {
    const n = candidates.length;
    const scorers = this.profile.scorers;
    const totals = buf.totals;
    for (let s = 0; s < scorers.length; s++) {
      const w = scorers[s].weight;
      const sc = buf.scores[s];
      for (let i = 0; i < n; i++) {
        const v = sc[i];
        // Clamp defensively: a scorer bug must not let one plugin dominate.
        totals[i] += w * (v > 1 ? 1 : v >= 0 ? v : 0);
      }
    }
    let order: number[];
    try {
      order = this.profile.picker.pick(ctx, candidates, totals);
    } catch (err) {
      this.#release(buf);
      throw err;
    }
    if (order.length === 0) {
      this.#release(buf);
      throw new KvrError('KVR_ERR_INTERNAL', `picker "${this.profile.picker.name}" returned no endpoint for ${n} candidates`);
    }
    return { candidates, order, totals, scores: buf.scores, single: false, release: () => this.#release(buf) };
  }

  #acquire(n: number): Buffers {
    const k = this.profile.scorers.length;
    for (let i = this.#pool.length - 1; i >= 0; i--) {
      const b = this.#pool[i];
      if (b.n === n) {
        this.#pool.splice(i, 1);
        b.totals.fill(0);
        for (let s = 0; s < k; s++) b.scores[s].fill(0);
        return b;
      }
    }
    const scores: Float64Array[] = [];
    for (let s = 0; s < k; s++) scores.push(new Float64Array(n));
    return { n, totals: new Float64Array(n), scores };
  }

  #release(b: Buffers): void {
    if (this.#pool.length < MAX_POOLED) this.#pool.push(b);
  }
}
