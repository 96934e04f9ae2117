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
    if (n >= RANK_BY_VALUES) return rankByValues(totals, n, winner);
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (i !== winner) order.push(i);
    order.sort((a, b) => totals[b] - totals[a] || a - b);
    order.unshift(winner);
    return order;
  }
}

/** From this many candidates on, the fallbacks are ranked by {@link rankByValues}. */
const RANK_BY_VALUES = 48;

/**
 * The same order as sorting the candidates other than `winner` by total (descending), ties by
 * index, without a comparator call per comparison (the cost at 1,000 candidates): the distinct
 * totals are sorted natively (a typed-array sort), each candidate finds its total's rank by
 * binary search, and a counting pass lays the candidates out by rank in index order.
 */
function rankByValues(totals: Float64Array, n: number, winner: number): number[] {
  const sorted = totals.slice(0, n).sort();
  let u = 0;
  for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i];
  const rank = new Int32Array(n);
  const start = new Int32Array(u + 1);
  for (let i = 0; i < n; i++) {
    if (i === winner) continue;
    const v = totals[i];
    let lo = 0;
    let hi = u - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    const r = u - 1 - lo; // 0 = highest total
    rank[i] = r;
    start[r + 1]++;
  }
  for (let r = 0; r < u; r++) start[r + 1] += start[r];
  const order: number[] = new Array(n);
  order[0] = winner;
  for (let i = 0; i < n; i++) if (i !== winner) order[1 + start[rank[i]]++] = i;
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
