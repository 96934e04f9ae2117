/**
 * max-score-picker (llm-d's): the candidate with the highest weighted total wins; when several
 * share the top total, one of them is drawn at random with the injected Rng (so equal endpoints
 * share load and tests stay deterministic per seed). The rest are ranked by total, best first,
 * as retry fallbacks (ties among them keep candidate order). No parameters.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { randInt, type Rng } from '../../core/rng.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Picker, SchedulingContext } from '../types.js';

const params = z.strictObject({});

/** Totals closer than this count as equal. */
const EPSILON = 1e-9;

/** Picks the top total, ties at random. */
export class MaxScorePicker implements Picker {
  readonly type = 'max-score-picker';
  readonly #rng: Rng;

  constructor(readonly name: string, rng: Rng) {
    this.#rng = rng;
  }

  pick(_ctx: SchedulingContext, candidates: readonly Endpoint[], totals: Float64Array): number[] {
    const n = candidates.length;
    if (n === 0) return [];
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (totals[i] > max) max = totals[i];
    let ties = 0;
    for (let i = 0; i < n; i++) if (max - totals[i] <= EPSILON) ties++;
    let k = ties > 1 ? randInt(this.#rng, ties) : 0;
    let winner = 0;
    for (let i = 0; i < n; i++) {
      if (max - totals[i] <= EPSILON && k-- === 0) {
        winner = i;
        break;
      }
    }
    if (n >= RANK_BY_VALUES) return rankByMerge(totals, n, winner);
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (i !== winner) order.push(i);
    order.sort((a, b) => totals[b] - totals[a] || a - b);
    order.unshift(winner);
    return order;
  }
}

/** From this many candidates on, the fallbacks are ranked by {@link rankByMerge}. */
const RANK_BY_VALUES = 32;

/** Length of the runs rankByMerge sorts by insertion before merging. */
const RUN = 8;

let bufA = new Int32Array(1024);
let bufB = new Int32Array(1024);

/**
 * The same order as sorting the candidates other than `winner` by total (descending), ties by
 * index, without a comparator call per comparison (the cost at 1,000 candidates): a bottom-up
 * merge sort (on insertion-sorted runs of 8) of the indices over two reused typed arrays. Both
 * sorts are stable and the indices start in ascending order, so equal totals keep index order,
 * as the comparator's `|| a - b` does.
 */
function rankByMerge(totals: Float64Array, n: number, winner: number): number[] {
  if (bufA.length < n) {
    bufA = new Int32Array(Math.max(n, bufA.length * 2));
    bufB = new Int32Array(bufA.length);
  }
  let src = bufA;
  let dst = bufB;
  const m = n - 1;
  for (let i = 0, k = 0; i < n; i++) if (i !== winner) src[k++] = i;
  // Runs of RUN indices by insertion sort first (stable: an index moves only past strictly
  // smaller totals), then merged: 3 merge passes fewer than from runs of one.
  for (let lo = 0; lo < m; lo += RUN) {
    const hi = Math.min(lo + RUN, m);
    for (let i = lo + 1; i < hi; i++) {
      const x = src[i];
      const v = totals[x];
      let j = i;
      while (j > lo && totals[src[j - 1]] < v) {
        src[j] = src[j - 1];
        j--;
      }
      src[j] = x;
    }
  }
  for (let width = RUN; width < m; width *= 2) {
    for (let lo = 0; lo < m; lo += 2 * width) {
      const mid = Math.min(lo + width, m);
      const hi = Math.min(lo + 2 * width, m);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        // Take from the right run only when strictly greater: stable.
        if (totals[src[j]] > totals[src[i]]) dst[k++] = src[j++];
        else dst[k++] = src[i++];
      }
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    const t = src;
    src = dst;
    dst = t;
  }
  const order: number[] = [winner];
  for (let i = 0; i < m; i++) order.push(src[i]);
  return order;
}

/** Registry entry of {@link MaxScorePicker}. */
export const maxScorePickerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'max-score-picker',
  kind: 'picker',
  description: 'highest weighted total, ties broken at random',
  params,
  create: (name, _p, deps) => new MaxScorePicker(name, deps.rng),
};
