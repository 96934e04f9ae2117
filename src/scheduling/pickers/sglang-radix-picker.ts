/**
 * sglang-radix-picker: SGLang router's `cache_aware` policy as written in sgl-router
 * (`policies/cache_aware.rs`, CLI defaults), not idealised:
 *
 *   load_i     = requests the router has in flight on worker i
 *   imbalanced = max load - min load > balanceAbsThreshold (64) and max load > balanceRelThreshold (1.5) x min load
 *   imbalanced -> the least loaded worker
 *   else (matched, tenant) = tree.prefix_match(text); rate = matched chars / text chars
 *        rate > cacheThreshold (0.3) -> tenant
 *        else                         -> tree.get_smallest_tenant() (fewest characters in the tree)
 *   tree.insert(text, chosen worker)
 *   every evictionIntervalSecs (120): every tenant evicted by LRU leaf down to maxTreeSize (2^26) chars
 *
 * One character radix tree shared by all workers (src/prefix/char-radix-tree.ts); every worker
 * starts as an empty tenant; ties (smallest tree, least load) go to the first candidate, as the
 * worker order decides in sgl-router. The tree knows nothing of the engines' real caches: the
 * 2^26-character bound is far above any GPU's KV capacity, and nothing is evicted for 120 s.
 * Use it alone in a profile (it ignores weighted totals). Text = the request's prompt text.
 */
import { z } from 'zod';
import type { Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import { CharRadixTree } from '../../prefix/char-radix-tree.js';
import type { LoadTracker } from '../load-tracker.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Picker, RequestObserver, SchedulingContext } from '../types.js';

const params = z.strictObject({
  cacheThreshold: z.number().min(0).max(1).default(0.3),
  balanceAbsThreshold: z.number().min(0).default(64),
  balanceRelThreshold: z.number().min(1).default(1.5),
  evictionIntervalSecs: z.number().min(0).default(120),
  maxTreeSize: z.number().int().min(1).default(2 ** 26),
});

/** Parameters of {@link SglangRadixPicker}. */
export type SglangRadixParams = z.infer<typeof params>;

/** SGLang's cache-aware policy on a character radix tree; see the file comment. */
export class SglangRadixPicker implements Picker, RequestObserver {
  readonly type = 'sglang-radix-picker';
  readonly tree = new CharRadixTree();
  readonly #p: SglangRadixParams;
  readonly #load: LoadTracker;
  readonly #clock: Clock;
  #lastEviction: number | undefined;
  readonly stats = { imbalanced: 0, 'cache-match': 0, 'smallest-tree': 0 };

  constructor(readonly name: string, p: Partial<SglangRadixParams>, deps: { load: LoadTracker; clock: Clock }) {
    this.#p = params.parse(p);
    this.#load = deps.load;
    this.#clock = deps.clock;
  }

  pick(ctx: SchedulingContext, candidates: readonly Endpoint[]): number[] {
    const n = candidates.length;
    if (n === 0) return [];
    this.#maybeEvict();
    for (const c of candidates) this.tree.addTenant(c.id);
    const loads = candidates.map((c) => this.#load.load(c).inflight);
    let minI = 0;
    let maxL = loads[0];
    for (let i = 1; i < n; i++) {
      if (loads[i] < loads[minI]) minI = i;
      if (loads[i] > maxL) maxL = loads[i];
    }
    const minL = loads[minI];
    let winner: number;
    if (maxL - minL > this.#p.balanceAbsThreshold && maxL > this.#p.balanceRelThreshold * minL) {
      this.stats.imbalanced++;
      winner = minI;
    } else {
      const text = ctx.request.promptText;
      const m = this.tree.match(text);
      const rate = text.length > 0 ? m.chars / text.length : 0;
      const byTenant = m.tenant === undefined ? -1 : candidates.findIndex((c) => c.id === m.tenant);
      if (rate > this.#p.cacheThreshold && byTenant >= 0) {
        this.stats['cache-match']++;
        winner = byTenant;
      } else {
        this.stats['smallest-tree']++;
        winner = 0;
        for (let i = 1; i < n; i++) if (this.tree.size(candidates[i].id) < this.tree.size(candidates[winner].id)) winner = i;
      }
    }
    const order = [winner];
    const rest: number[] = [];
    for (let i = 0; i < n; i++) if (i !== winner) rest.push(i);
    rest.sort((a, b) => loads[a] - loads[b] || a - b);
    return order.concat(rest);
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.tree.insert(ctx.request.promptText, endpoint.id, this.#clock.now());
  }

  /** Forgets the worker's tenant (it left the pool). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.tree.removeTenant(endpoint.id);
  }

  #maybeEvict(): void {
    const now = this.#clock.now();
    if (this.#p.evictionIntervalSecs <= 0) return;
    if (this.#lastEviction === undefined) this.#lastEviction = now;
    if (now - this.#lastEviction < this.#p.evictionIntervalSecs * 1000) return;
    this.#lastEviction = now;
    for (const t of this.tree.tenants()) this.tree.evictTenant(t, this.#p.maxTreeSize);
  }
}

/** Registry entry of {@link SglangRadixPicker}. */
export const sglangRadixPickerPlugin: PluginDefinition<SglangRadixParams> = {
  type: 'sglang-radix-picker',
  kind: 'picker',
  description: "SGLang router's cache_aware policy as written: character radix tree, 2^26 chars per worker, eviction every 120 s, thresholds 0.3 / 64 / 1.5",
  params,
  create: (name, p, deps) => new SglangRadixPicker(name, p, { load: deps.load, clock: deps.clock }),
};
