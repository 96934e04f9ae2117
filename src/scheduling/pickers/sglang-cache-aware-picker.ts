/**
 * sglang-cache-aware-picker: SGLang router's cache-aware policy as a picker (it ignores weighted
 * totals; use it alone in a profile). Per request:
 *
 *   load_i = requests in flight on candidate i (the router's own count)
 *   imbalanced = (max load - min load > balanceAbsThreshold) and (max load > balanceRelThreshold x min load)
 *   imbalanced              -> the least loaded candidate
 *   else best match rate > cacheThreshold -> the candidate with the longest prefix match
 *   else                    -> the candidate with the smallest tree (most free cache)
 *
 * Match rate = matched prompt characters / prompt characters. SGLang keeps a character radix
 * tree per worker; here each candidate's "tree" is an approximate prefix index of chained
 * 64-character block keys (the same structure as prefix-cache-scorer, but over the whole prompt,
 * up to `maxPrefixBlocks`), bounded per endpoint by its reported KV blocks (else
 * `lruCapacityPerServer`), LRU-evicted. The picked candidate's tree gets the prompt in every
 * branch, as SGLang inserts the request text into the chosen worker's tree. Ties go to the lower
 * load, then at random. The others are ranked by load as retry fallbacks.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { memoize, type InferenceRequest } from '../../core/request.js';
import type { Rng } from '../../core/rng.js';
import { ApproxPrefixIndex, DEFAULT_LRU_CAPACITY_PER_SERVER } from '../../prefix/approx-prefix-index.js';
import { setPrefixPrediction } from '../../prefix/prefix-prediction.js';
import { TextBlockHasher } from '../../prefix/text-block-hasher.js';
import type { LoadTracker } from '../load-tracker.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Picker, RequestObserver, SchedulingContext } from '../types.js';

const params = z.strictObject({
  cacheThreshold: z.number().min(0).max(1).default(0.3),
  balanceAbsThreshold: z.number().min(0).default(64),
  balanceRelThreshold: z.number().min(1).default(1.5),
  hashBlockSize: z.number().int().min(1).max(4096).default(64),
  maxPrefixBlocks: z.number().int().min(1).max(1_000_000).default(65_536),
  lruCapacityPerServer: z.number().int().min(1).default(DEFAULT_LRU_CAPACITY_PER_SERVER),
});

/** Parameters of {@link SglangCacheAwarePicker}. */
export type SglangCacheAwareParams = z.infer<typeof params>;

/** Which branch decided a pick (counted in {@link SglangCacheAwarePicker.stats}). */
export type SglangBranch = 'imbalanced' | 'cache-match' | 'smallest-tree';

/** SGLang's cache-aware routing policy; see the file comment. */
export class SglangCacheAwarePicker implements Picker, RequestObserver {
  readonly type = 'sglang-cache-aware-picker';
  readonly index: ApproxPrefixIndex;
  readonly #p: SglangCacheAwareParams;
  readonly #hasher: TextBlockHasher;
  readonly #load: LoadTracker;
  readonly #rng: Rng;
  readonly #memo: string;
  readonly #stats: Record<SglangBranch, number> = { imbalanced: 0, 'cache-match': 0, 'smallest-tree': 0 };

  constructor(readonly name: string, p: Partial<SglangCacheAwareParams>, deps: { load: LoadTracker; rng: Rng }) {
    this.#p = params.parse(p);
    this.#hasher = new TextBlockHasher(this.#p.hashBlockSize, this.#p.maxPrefixBlocks);
    this.index = new ApproxPrefixIndex(this.#p.lruCapacityPerServer);
    this.#load = deps.load;
    this.#rng = deps.rng;
    this.#memo = `sglang-keys/${this.#p.hashBlockSize}/${this.#p.maxPrefixBlocks}`;
  }

  /** Picks per branch since start. */
  stats(): Record<SglangBranch, number> {
    return { ...this.#stats };
  }

  #keys(req: InferenceRequest): Float64Array {
    return memoize(req, this.#memo, () => this.#hasher.hash(req.model, req.promptText));
  }

  pick(ctx: SchedulingContext, candidates: readonly Endpoint[]): number[] {
    const n = candidates.length;
    if (n === 0) return [];
    const req = ctx.request;
    const loads = new Float64Array(n);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const l = this.#load.load(candidates[i]).inflight;
      loads[i] = l;
      if (l < min) min = l;
      if (l > max) max = l;
    }
    const keys = this.#keys(req);
    const matched = new Float64Array(n);
    if (keys.length > 0) this.index.longestPrefix(keys, candidates, matched);
    this.#predict(req, candidates, matched, keys.length);
    let key: (i: number) => number;
    if (max - min > this.#p.balanceAbsThreshold && max > this.#p.balanceRelThreshold * min) {
      this.#stats.imbalanced++;
      key = (i) => -loads[i];
    } else {
      let best = 0;
      for (let i = 0; i < n; i++) if (matched[i] > best) best = matched[i];
      const rate = req.promptText.length > 0 ? (best * this.#hasher.blockChars) / req.promptText.length : 0;
      if (rate > this.#p.cacheThreshold) {
        this.#stats['cache-match']++;
        key = (i) => matched[i];
      } else {
        this.#stats['smallest-tree']++;
        key = (i) => -this.index.blocksOf(candidates[i]);
      }
    }
    // Primary: best key, then lower load, then random among the remaining ties.
    let bestKey = -Infinity;
    let bestLoad = Infinity;
    const ties: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = key(i);
      if (k > bestKey || (k === bestKey && loads[i] < bestLoad)) {
        bestKey = k;
        bestLoad = loads[i];
        ties.length = 0;
        ties.push(i);
      } else if (k === bestKey && loads[i] === bestLoad) {
        ties.push(i);
      }
    }
    const winner = ties.length > 1 ? ties[Math.floor(this.#rng.next() * ties.length)] : ties[0];
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (i !== winner) order.push(i);
    order.sort((a, b) => loads[a] - loads[b] || a - b);
    order.unshift(winner);
    return order;
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const keys = this.#keys(ctx.request);
    if (keys.length > 0) this.index.add(endpoint, keys);
  }

  /** Forgets the endpoint's tree (it left the pool). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.index.removeEndpoint(endpoint);
  }

  /** Memoizes the match as a prefix prediction so the load tracker counts only uncached prefill. */
  #predict(req: InferenceRequest, candidates: readonly Endpoint[], matched: Float64Array, total: number): void {
    let maxIdx = 0;
    for (const c of candidates) if (c.index > maxIdx) maxIdx = c.index;
    const byIndex = new Int32Array(maxIdx + 1);
    const ids: (string | undefined)[] = new Array(maxIdx + 1);
    let anyHit = false;
    for (let i = 0; i < candidates.length; i++) {
      byIndex[candidates[i].index] = matched[i];
      ids[candidates[i].index] = candidates[i].id;
      if (matched[i] > 0) anyHit = true;
    }
    setPrefixPrediction(req, { source: 'approximate', totalBlocks: total, blockTokens: this.#hasher.blockChars / 4, matchedByIndex: byIndex, idsByIndex: ids, anyHit });
  }
}

/** Registry entry of {@link SglangCacheAwarePicker}. */
export const sglangCacheAwarePickerPlugin: PluginDefinition<SglangCacheAwareParams> = {
  type: 'sglang-cache-aware-picker',
  kind: 'picker',
  description: "SGLang's cache-aware policy: least loaded when imbalanced (abs 64 and rel 1.5), else longest prefix if its match rate > 0.3, else the smallest tree",
  params,
  create: (name, p, deps) => new SglangCacheAwarePicker(name, p, { load: deps.load, rng: deps.rng }),
};
