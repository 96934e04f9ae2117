/**
 * prefix-cache-scorer (llm-d's approximate prefix scorer): predicts, without a tokenizer or engine
 * events, how much of the request's prompt each endpoint already holds in its KV cache, from what
 * the router itself sent there.
 *
 * Algorithm:
 * 1. The prompt (the whole rendered conversation) is cut into blocks of `hashBlockSize`
 *    characters (64 = ~16 tokens, vLLM's default block); the first `maxPrefixBlocksToMatch`
 *    full blocks get chained xxhash64 keys seeded with the model name (TextBlockHasher).
 * 2. The approximate index (one LRU of keys per endpoint, capacity = the endpoint's reported
 *    `numGpuBlocks`, else `lruCapacityPerServer`) gives each candidate the length of the longest
 *    run of the request's keys it holds from the first block.
 * 3. score_i = matched blocks_i / total blocks (0 when the prompt is shorter than one block).
 * 4. After the pick, the picked endpoint's LRU gets the request's keys (also when scoring was
 *    skipped because there was one candidate).
 *
 * The keys and the per-endpoint prediction are memoized on the request (PrefixPrediction), so
 * the load tracker counts only the predicted uncached prompt as prefill work.
 *
 * Parameters:
 * - `hashBlockSize` (default 64): characters per block.
 * - `maxPrefixBlocksToMatch` (default 256): blocks hashed from the start of the prompt
 *   (256 x 64 = 16 KiB of text, ~4k tokens).
 * - `lruCapacityPerServer` (default 31,250): blocks remembered per endpoint when it reports no
 *   capacity.
 * - `commonPrefixShare` (default 0 = off, llm-d's behaviour): leading blocks present in at least
 *   this share of the last `commonPrefixWindow` (default 200) requests count as held by every
 *   candidate (src/prefix/common-prefix.ts): a system prompt all traffic shares does not decide
 *   placement; the score is max(matched, common) / total and the prediction carries `commonBlocks`.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { memoize, type InferenceRequest } from '../../core/request.js';
import { ApproxPrefixIndex, DEFAULT_LRU_CAPACITY_PER_SERVER } from '../../prefix/approx-prefix-index.js';
import { prefixPredictionOf, setPrefixPrediction, type PrefixPrediction } from '../../prefix/prefix-prediction.js';
import { TextBlockHasher } from '../../prefix/text-block-hasher.js';
import { CommonPrefixTracker } from '../../prefix/common-prefix.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { RequestObserver, RequestOutcome, Scorer, SchedulingContext } from '../types.js';
import type { PickKeys, PickKeysSource, RemotePick, RemotePickAware } from '../../sync/remote-pick.js';

const params = z.strictObject({
  hashBlockSize: z.number().int().min(1).max(4096).default(64),
  maxPrefixBlocksToMatch: z.number().int().min(1).max(65_536).default(256),
  lruCapacityPerServer: z.number().int().min(1).default(DEFAULT_LRU_CAPACITY_PER_SERVER),
  // No zod defaults: parsed llm-d configs keep exactly their own keys (defaults 0 and 200 below).
  commonPrefixShare: z.number().min(0).max(1).optional(),
  commonPrefixWindow: z.number().int().min(1).max(100_000).optional(),
});

/** Parameters of {@link PrefixCacheScorer}. */
export type PrefixCacheScorerParams = z.infer<typeof params>;

/** Approximate prefix-cache scorer; see the file comment. */
export class PrefixCacheScorer implements Scorer, RequestObserver, PickKeysSource, RemotePickAware {
  readonly type = 'prefix-cache-scorer';
  /** The approximate index (exposed for diagnostics and endpoint removal). */
  readonly index: ApproxPrefixIndex;
  readonly #hasher: TextBlockHasher;
  readonly #keysMemo: string;
  readonly #common: CommonPrefixTracker<number> | undefined;

  constructor(
    readonly name: string = 'prefix-cache-scorer',
    p: Partial<PrefixCacheScorerParams> = {},
  ) {
    const blockChars = p.hashBlockSize ?? 64;
    const maxBlocks = p.maxPrefixBlocksToMatch ?? 256;
    this.#hasher = new TextBlockHasher(blockChars, maxBlocks);
    this.index = new ApproxPrefixIndex(p.lruCapacityPerServer ?? DEFAULT_LRU_CAPACITY_PER_SERVER);
    this.#keysMemo = `prefix-keys/${blockChars}/${maxBlocks}`;
    this.keyScheme = `text/${blockChars}/${maxBlocks}`;
    const share = p.commonPrefixShare ?? 0;
    this.#common = share > 0 ? new CommonPrefixTracker<number>({ share, window: p.commonPrefixWindow ?? 200, maxBlocks }) : undefined;
  }

  /** How this scorer's keys are made (router replicas share keys only between equal schemes). */
  readonly keyScheme: string;

  /** The keys a picked request carried (memoized at scoring or pick time), for src/sync. */
  pickKeysOf(req: InferenceRequest): PickKeys | undefined {
    const keys = req.memo.get(this.#keysMemo) as Float64Array | undefined;
    return keys !== undefined ? { scheme: this.keyScheme, keys } : undefined;
  }

  /**
   * Another router replica routed `pick.keys` to `pick.endpoint`: the index learns it too, and
   * the common-prefix window counts that request, as one router would have seen it.
   */
  applyRemotePick(pick: RemotePick): void {
    if (pick.keys === undefined || pick.keys.scheme !== this.keyScheme || pick.keys.keys.length === 0) return;
    this.index.add(pick.endpoint, pick.keys.keys);
    this.#common?.observe(pick.keys.keys);
  }

  /** The request's block keys (memoized on the request). */
  keysOf(req: InferenceRequest): Float64Array {
    return memoize(req, this.#keysMemo, () => this.#hasher.hash(req.model, req.promptText));
  }

  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    const req = ctx.request;
    const keys = this.keysOf(req);
    const total = keys.length;
    const n = candidates.length;
    if (total > 0) this.index.longestPrefix(keys, candidates, out);
    const common = total > 0 && this.#common !== undefined ? this.#common.depthThenObserve(keys) : 0;
    let maxIdx = 0;
    for (let i = 0; i < n; i++) if (candidates[i].index > maxIdx) maxIdx = candidates[i].index;
    const matched = new Int32Array(maxIdx + 1);
    const ids: (string | undefined)[] = new Array(maxIdx + 1);
    let anyHit = false;
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      const m = total > 0 ? out[i] : 0;
      matched[c.index] = m;
      ids[c.index] = c.id;
      if (m > 0) anyHit = true;
      out[i] = total > 0 ? Math.max(m, common) / total : 0;
    }
    const prediction: PrefixPrediction = {
      source: 'approximate', totalBlocks: total, blockTokens: this.#hasher.blockChars / 4, matchedByIndex: matched, idsByIndex: ids, anyHit, commonBlocks: common,
    };
    setPrefixPrediction(req, prediction);
  }

  /** Forgets what the endpoint holds (it left the pool or its cache was reset). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.index.removeEndpoint(endpoint);
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const keys = this.keysOf(ctx.request);
    if (keys.length > 0) this.index.add(endpoint, keys);
  }

  /** The engine's cached tokens correct the index's capacity (ApproxPrefixIndex.observe). */
  onComplete(ctx: SchedulingContext, endpoint: Endpoint, outcome: RequestOutcome): void {
    if (!outcome.ok || outcome.cachedTokens === undefined) return;
    const p = prefixPredictionOf(ctx.request);
    if (p === undefined || p.source !== 'approximate' || p.idsByIndex[endpoint.index] !== endpoint.id) return;
    this.index.observe(endpoint, p.matchedByIndex[endpoint.index] ?? 0, outcome.cachedTokens / p.blockTokens);
  }
}

/** Registry entry of {@link PrefixCacheScorer}. */
export const prefixCacheScorerPlugin: PluginDefinition<PrefixCacheScorerParams> = {
  type: 'prefix-cache-scorer',
  kind: 'scorer',
  description: 'approximate prefix match: longest run of the prompt\'s 64-char blocks routed to the endpoint / total blocks',
  params,
  create: (name, p) => new PrefixCacheScorer(name, p),
};
