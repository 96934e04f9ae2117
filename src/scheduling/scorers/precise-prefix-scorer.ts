/**
 * precise-prefix-cache-scorer (llm-d's precise scorer): scores each candidate by how much of the
 * request's prompt it REALLY holds, per the block index fed by the engines' KV-cache events.
 *
 *   tokens = tokenize(request)               exactly as the engine will (chat template included)
 *   keys   = kvroute block keys of tokens    chained, one per full block of `blockSize` tokens
 *   run_i  = longest run of keys[0..] candidate i holds      (index lookup; GPU 1.0, CPU 0.8)
 *          + speculative continuation                        (see below)
 *   score_i = weighted run_i / keys.length                   0 for prompts shorter than a block
 *
 * Speculative entries. Events confirm a block only after the engine computed it, so for the
 * first moments after a pick the index does not know that the picked endpoint is about to hold
 * the request's blocks; a burst of siblings would scatter. After each pick the picked endpoint
 * gets the request's keys as short-lived local entries: they live `speculativeTtlMs` (default
 * 30 s) while the request waits and prefills, and `confirmGraceMs` (default 2 s) after its first
 * token, by when the engine's BlockStored events have normally arrived. A candidate's run
 * continues through its speculative keys where the index's run stops (weight 1.0). Entries are
 * bounded per endpoint (`maxSpeculativeBlocks`, oldest dropped first); expiry costs O(expired)
 * (src/scheduling/scorers/speculative-blocks.ts).
 *
 * Bursts. Index lookups are asynchronous (a Redis round trip), so siblings arriving together
 * would all be scored before the first is picked and none would see the others' speculative
 * entries. Scoring therefore takes a ticket in arrival order: after its own lookup, a request
 * reads the speculative entries only once the request scored before it was picked (or failed,
 * or `burstWaitMs` passed, default 50 ms), so each sibling sees where the earlier ones went.
 *
 * Common prefix. With `commonPrefixShare` > 0 (default 0 = off, llm-d's behaviour), leading
 * blocks present in at least that share of the last `commonPrefixWindow` requests count as held by
 * every candidate (src/prefix/common-prefix.ts): score = max(run, common) / keys.length, and the
 * prediction carries `commonBlocks` so the cost and cold-prompt scorers see the same.
 *
 * Fallback. When precise data cannot be had (no services configured, tokenizer or index
 * failing, e.g. Redis down) the request is scored by an embedded approximate prefix scorer
 * (llm-d's prefix-cache-scorer, fed by every pick), so routing keeps its locality; each
 * fallback is counted by reason in {@link PrecisePrefixScorer.stats}.
 *
 * The prediction (matched blocks per candidate) is memoized on the request so the load tracker
 * counts only uncached prompt tokens as prefill work and no-hit-lru knows whether anything hit.
 */
import { z } from 'zod';
import type { PickKeys, PickKeysSource, RemotePick, RemotePickAware } from '../../sync/remote-pick.js';
import type { Clock } from '../../core/clock.js';
import type { Endpoint } from '../../core/endpoint.js';
import type { InferenceRequest } from '../../core/request.js';
import { setPrefixPrediction, type PrefixPrediction } from '../../prefix/prefix-prediction.js';
import { adapterFor } from '../../engines/registry.js';
import type { BlockKey, KvCacheServices, PrefixRun } from '../kv-cache-services.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { RequestObserver, Scorer, SchedulingContext } from '../types.js';
import { PrefixCacheScorer } from './prefix-cache-scorer.js';
import { SpeculativeBlocks } from './speculative-blocks.js';
import { CommonPrefixTracker } from '../../prefix/common-prefix.js';

// llm-d's config nests the indexer and event settings under these keys; accepted so its files
// load, read for the block size, otherwise configured through kvroute's own options.
const llmdNested = z.record(z.string(), z.unknown()).optional();

const params = z.strictObject({
  speculativeTtlMs: z.number().int().min(0).max(600_000).default(30_000),
  confirmGraceMs: z.number().int().min(0).max(600_000).default(2_000),
  maxSpeculativeBlocks: z.number().int().min(0).default(200_000),
  burstWaitMs: z.number().int().min(0).max(10_000).default(50),
  // No zod defaults: parsed llm-d configs keep exactly their own keys (defaults 0 and 200 below).
  commonPrefixShare: z.number().min(0).max(1).optional(),
  commonPrefixWindow: z.number().int().min(1).max(100_000).optional(),
  tokenProcessorConfig: z.strictObject({ blockSize: z.number().int().min(1).max(1024).optional(), hashSeed: z.string().optional() }).optional(),
  indexerConfig: llmdNested,
  kvEventsConfig: llmdNested,
});

/** Parameters of {@link PrecisePrefixScorer}. */
export type PrecisePrefixScorerParams = z.infer<typeof params>;

/**
 * Why a request was scored approximately. `engine-no-events`: no candidate's engine publishes
 * KV-cache events (llama.cpp, a generic OpenAI server), so the index can never hold their blocks.
 */
export type FallbackReason = 'no-index' | 'tokenize-failed' | 'lookup-failed' | 'engine-no-events';

/** Counters of the precise scorer (read by metrics and the dashboard). */
export interface PrecisePrefixStats {
  /** Requests scored from the index. */
  precise: number;
  /** Requests scored approximately, by reason. */
  fallbacks: Record<FallbackReason, number>;
  /** Requests where some candidate's run was extended by speculative entries. */
  speculativeHits: number;
  /** Speculative entries held now (all endpoints). */
  speculativeEntries: number;
  /** Last error message of a failed tokenize or lookup ('' if none). */
  lastError: string;
}

interface Prepared {
  keys: ArrayLike<BlockKey>;
  tokens: number;
}

const PREPARED_MEMO = 'precise-prefix-cache-scorer/prepared';
const TICKET_MEMO = 'precise-prefix-cache-scorer/ticket';

/** Precise prefix scorer; see the file comment. */
export class PrecisePrefixScorer implements Scorer, RequestObserver, PickKeysSource, RemotePickAware {
  readonly type = 'precise-prefix-cache-scorer';
  /** The approximate scorer used as fallback (fed by every pick). */
  readonly approximate: PrefixCacheScorer;
  readonly #services: KvCacheServices | undefined;
  readonly #clock: Clock;
  readonly #ttl: number;
  readonly #grace: number;
  readonly #spec: SpeculativeBlocks;
  readonly #burstWait: number;
  readonly #common: CommonPrefixTracker<BlockKey> | undefined;
  /** Resolves when the request scored last was picked (see "Bursts" in the file comment). */
  #turn: Promise<void> = Promise.resolve();
  #lastSweep = 0;
  /** Scratch of score()'s synchronous tail (after its last await): index run and speculative run per candidate. */
  #from = new Int32Array(64);
  #specRun = new Int32Array(64);
  readonly #stats: Omit<PrecisePrefixStats, 'speculativeEntries'> = {
    precise: 0,
    fallbacks: { 'no-index': 0, 'tokenize-failed': 0, 'lookup-failed': 0, 'engine-no-events': 0 },
    speculativeHits: 0,
    lastError: '',
  };

  constructor(
    readonly name: string,
    p: Partial<PrecisePrefixScorerParams>,
    deps: { clock: Clock; kvCache?: KvCacheServices },
  ) {
    this.#services = deps.kvCache;
    this.#clock = deps.clock;
    this.#ttl = p.speculativeTtlMs ?? 30_000;
    this.#grace = p.confirmGraceMs ?? 2_000;
    this.#spec = new SpeculativeBlocks(p.maxSpeculativeBlocks ?? 200_000);
    this.#burstWait = p.burstWaitMs ?? 50;
    const share = p.commonPrefixShare ?? 0;
    const window = p.commonPrefixWindow ?? 200;
    this.#common = share > 0 ? new CommonPrefixTracker<BlockKey>({ share, window }) : undefined;
    this.approximate = new PrefixCacheScorer(`${name}/approximate`, { commonPrefixShare: share, commonPrefixWindow: window });
    // A cleared cache takes the speculative entries with it (they would predict blocks that are gone).
    deps.kvCache?.onEndpointReset?.((id) => this.#spec.removeEndpoint(id));
  }

  /** The embedded approximate scorer's keys of a picked request (src/sync publishes them). */
  pickKeysOf(req: InferenceRequest): PickKeys | undefined {
    return this.approximate.pickKeysOf(req);
  }

  /** Another router replica's pick feeds the embedded approximate index (the precise index is shared through Redis). */
  applyRemotePick(pick: RemotePick): void {
    this.approximate.applyRemotePick(pick);
  }

  /** True when the scorer has an index to ask (else it always routes approximately). */
  get precise(): boolean {
    return this.#services !== undefined;
  }

  stats(): PrecisePrefixStats {
    return { ...this.#stats, fallbacks: { ...this.#stats.fallbacks }, speculativeEntries: this.#spec.size };
  }

  /** Synchronous when it routes approximately (no index, or no engine with events); else a promise. */
  score(ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void | Promise<void> {
    const svc = this.#services;
    // The engines' inability comes first: with or without an index, no candidate's blocks can
    // ever be indexed, and that is what the operator must hear.
    if (candidates.length > 0 && candidates.every((c) => !adapterFor(c.engine).kvEvents)) {
      return this.#fallback('engine-no-events', new Error(`no candidate engine publishes KV events (${[...new Set(candidates.map((c) => c.engine))].join(', ')})`), ctx, candidates, out);
    }
    if (svc === undefined) return this.#fallback('no-index', undefined, ctx, candidates, out);
    return this.#scorePrecise(svc, ctx, candidates, out);
  }

  async #scorePrecise(svc: KvCacheServices, ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): Promise<void> {
    // A request whose client went away is neither tokenized nor looked up (scores stay 0).
    if (ctx.request.signal?.aborted) return void out.fill(0);
    let prep: Prepared;
    try {
      prep = await this.#prepare(svc, ctx.request);
    } catch (err) {
      if (ctx.request.signal?.aborted) return void out.fill(0);
      return this.#fallback('tokenize-failed', err, ctx, candidates, out);
    }
    if (ctx.request.signal?.aborted) return void out.fill(0);
    const total = prep.keys.length;
    const n = candidates.length;
    const before = this.#takeTicket(ctx.request);
    let runs: PrefixRun[] | undefined;
    const endpointIds = total > 0 ? candidates.map((c) => c.id) : [];
    if (total > 0) {
      try {
        runs = await svc.lookup(prep.keys, endpointIds);
      } catch (err) {
        this.#releaseTicket(ctx.request);
        return this.#fallback('lookup-failed', err, ctx, candidates, out);
      }
      await before;
    }
    this.#stats.precise++;
    const now = this.#clock.now();
    const common = total > 0 && this.#common !== undefined ? this.#common.depthThenObserve(prep.keys) : 0;
    let maxIdx = 0;
    for (let i = 0; i < n; i++) if (candidates[i].index > maxIdx) maxIdx = candidates[i].index;
    const matched = new Int32Array(maxIdx + 1);
    const ids: (string | undefined)[] = new Array(maxIdx + 1);
    let anyHit = false;
    let anySpec = false;
    // The speculative continuation of every candidate's index run, in one pass over the keys.
    if (this.#from.length < n) {
      this.#from = new Int32Array(Math.max(n, this.#from.length * 2));
      this.#specRun = new Int32Array(this.#from.length);
    }
    const from = this.#from;
    const specRun = this.#specRun;
    if (total > 0) {
      for (let i = 0; i < n; i++) from[i] = Math.min(runs![i]?.blocks ?? 0, total);
      this.#spec.runsFrom(endpointIds, prep.keys, from, now, specRun);
    }
    for (let i = 0; i < n; i++) {
      const c = candidates[i];
      ids[c.index] = c.id;
      if (total === 0) {
        out[i] = 0;
        continue;
      }
      const r = runs![i] ?? { blocks: 0, weighted: 0 };
      const blocks = from[i];
      const spec = specRun[i];
      if (spec > 0) anySpec = true;
      const m = blocks + spec;
      matched[c.index] = m;
      if (m > 0) anyHit = true;
      out[i] = Math.min(1, Math.max(r.weighted + spec, common) / total);
    }
    if (anySpec) this.#stats.speculativeHits++;
    const prediction: PrefixPrediction = {
      source: 'precise', totalBlocks: total, blockTokens: svc.blockSize, matchedByIndex: matched, idsByIndex: ids, anyHit, promptTokens: prep.tokens, commonBlocks: common,
    };
    setPrefixPrediction(ctx.request, prediction);
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.approximate.onPicked(ctx, endpoint);
    try {
      this.#record(ctx, endpoint);
    } finally {
      this.#releaseTicket(ctx.request);
    }
  }

  #record(ctx: SchedulingContext, endpoint: Endpoint): void {
    const svc = this.#services;
    if (svc === undefined || !adapterFor(endpoint.engine).kvEvents) return;
    const now = this.#clock.now();
    if (now - this.#lastSweep > 1000) {
      this.#lastSweep = now;
      this.#spec.sweep(now);
    }
    const prep = ctx.request.memo.get(PREPARED_MEMO) as Prepared | Promise<Prepared> | undefined;
    const until = now + this.#ttl;
    if (prep === undefined || prep instanceof Promise) {
      // Scoring was skipped (single candidate) or is still running: add once the keys exist.
      this.#prepare(svc, ctx.request).then(
        (p) => this.#spec.set(endpoint.id, p.keys, until, false),
        () => undefined,
      );
      return;
    }
    this.#spec.set(endpoint.id, prep.keys, until, false);
  }

  onFirstToken(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.#shorten(ctx.request, endpoint);
  }

  onComplete(ctx: SchedulingContext, endpoint: Endpoint): void {
    this.#releaseTicket(ctx.request);
    this.#shorten(ctx.request, endpoint);
  }

  /** Queues the request behind the one scored before it; returns what to wait for (bounded by burstWaitMs). */
  #takeTicket(req: InferenceRequest): Promise<void> {
    const prev = this.#turn;
    let release!: () => void;
    this.#turn = new Promise<void>((r) => (release = r));
    req.memo.set(TICKET_MEMO, release);
    if (this.#burstWait === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = this.#clock.setTimeout(resolve, this.#burstWait);
      const done = (): void => {
        t.cancel();
        resolve();
      };
      void prev.then(done);
      // The client went away: stop waiting (the lifecycle completes the pick at once).
      req.signal?.addEventListener('abort', done, { once: true });
    });
  }

  #releaseTicket(req: InferenceRequest): void {
    const release = req.memo.get(TICKET_MEMO) as (() => void) | undefined;
    if (release === undefined) return;
    req.memo.delete(TICKET_MEMO);
    release();
  }

  /** Forgets the endpoint's speculative entries (it left the pool or its cache was reset). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    this.#spec.removeEndpoint(endpoint.id);
    this.approximate.removeEndpoint(endpoint);
  }

  #shorten(req: InferenceRequest, endpoint: Endpoint): void {
    const prep = req.memo.get(PREPARED_MEMO) as Prepared | Promise<Prepared> | undefined;
    if (prep === undefined || prep instanceof Promise) return;
    this.#spec.set(endpoint.id, prep.keys, this.#clock.now() + this.#grace, true);
  }

  /** Tokens and keys of the request, computed once (the promise is memoized while pending). */
  #prepare(svc: KvCacheServices, req: InferenceRequest): Promise<Prepared> {
    const memo = req.memo.get(PREPARED_MEMO) as Prepared | Promise<Prepared> | undefined;
    if (memo !== undefined) return Promise.resolve(memo);
    const p = svc.tokenize(req).then((tokens) => {
      const prepared: Prepared = { keys: svc.requestKeys(req.model, tokens), tokens: tokens.length };
      req.memo.set(PREPARED_MEMO, prepared);
      return prepared;
    });
    req.memo.set(PREPARED_MEMO, p);
    p.catch(() => req.memo.delete(PREPARED_MEMO));
    return p;
  }

  #fallback(reason: FallbackReason, err: unknown, ctx: SchedulingContext, candidates: readonly Endpoint[], out: Float64Array): void {
    this.#stats.fallbacks[reason]++;
    if (err !== undefined) this.#stats.lastError = err instanceof Error ? err.message : String(err);
    out.fill(0);
    this.approximate.score(ctx, candidates, out);
  }
}

/** Registry entry of {@link PrecisePrefixScorer}. */
export const precisePrefixScorerPlugin: PluginDefinition<PrecisePrefixScorerParams> = {
  type: 'precise-prefix-cache-scorer',
  kind: 'scorer',
  description: 'precise prefix match from KV-cache events: longest run of the request\'s token blocks the endpoint holds (GPU 1.0, CPU 0.8) / total blocks',
  params,
  create: (name, p, deps) => new PrecisePrefixScorer(name, p, { clock: deps.clock, ...(deps.kvCache !== undefined ? { kvCache: deps.kvCache } : {}) }),
};
