/**
 * A continuous-batching engine modelled on vLLM v1's scheduler, running in the time of an
 * injected {@link Clock}. Each step: running requests first (decodes get 1 token, partially
 * prefilled ones continue), then FCFS waiting requests take prefill tokens within
 * `maxNumBatchedTokens`; out of KV blocks, the most recently admitted running request is
 * preempted (recompute). A step lasts `StepModel.stepMs(...) * timeScale` ms; tokens appear at
 * its end. No timer is set while the engine is empty.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type {
  SimEngineCallbacks,
  SimEngineOptions,
  SimEngineRequest,
  SimEngineStats,
  SimRequestHandle,
} from './engine-types.js';
import { KvrError } from '../core/errors.js';
import { extendBlockLanes } from './block-hash.js';
import { BlockManager } from './block-manager.js';
import { DONE, Req, RUNNING, WAITING } from './engine-request.js';
import { LatencyHistogram, ITL_BUCKETS, REQUEST_LATENCY_BUCKETS, TTFT_BUCKETS } from './latency-histogram.js';
import { PROFILES } from './profiles.js';
import { RequestQueue } from './request-queue.js';
import { StepModel, type StepCoefficients } from './step-model.js';

export type {
  SimEngineOptions,
  SimEngineRequest,
  SimEngineResult,
  SimEngineCallbacks,
  SimRequestHandle,
  SimEngineStats,
} from './engine-types.js';

/** The simulated vLLM engine of one replica. */
export class SimEngine {
  readonly blockManager: BlockManager;
  readonly blockSize: number;
  #clock: Clock;
  #model: StepModel;
  #maxSeqs: number;
  #maxBatched: number;
  #chunked: boolean;
  #timeScale: number;
  #seed: number;
  #sample: (r: number) => number;
  #eos: number;
  #stopP: number;
  #observer: SimEngineOptions['observer'];
  #running: Req[] = [];
  #waiting = new RequestQueue<Req>();
  #numWaiting = 0;
  #scheduled: Req[] = [];
  /** The other buffer of the scheduled list: a step's requests are read from one while a step started by a callback fills the other. */
  #spare: Req[] = [];
  #timer: TimerHandle | undefined;
  /** The step timer's callback, made once (not a closure per step). */
  readonly #onStepDone = (): void => this.#finishStep();
  /** Whether prefix caching is on (`enablePrefixCaching`, default true). */
  readonly prefixCaching: boolean;
  #busyMs = 0;
  #stats = { queries: 0, hits: 0, prompt: 0, generation: 0, success: 0, preemptions: 0, steps: 0 };
  #ttft = new LatencyHistogram(TTFT_BUCKETS);
  #itl = new LatencyHistogram(ITL_BUCKETS);
  #e2e = new LatencyHistogram(REQUEST_LATENCY_BUCKETS);
  #queue = new LatencyHistogram(REQUEST_LATENCY_BUCKETS);

  constructor(opts: SimEngineOptions) {
    this.#clock = opts.clock;
    const m = opts.stepModel ?? PROFILES['llama-3.1-8b'].step;
    this.#model = m instanceof StepModel ? m : new StepModel(m);
    this.blockSize = opts.blockSize ?? 16;
    this.blockManager = new BlockManager({
      numBlocks: opts.numGpuBlocks ?? PROFILES['llama-3.1-8b'].numGpuBlocks,
      blockSize: this.blockSize,
      onEvent: opts.onKvEvent,
    });
    this.#maxSeqs = opts.maxNumSeqs ?? PROFILES['llama-3.1-8b'].maxNumSeqs;
    this.#maxBatched = opts.maxNumBatchedTokens ?? 8192;
    this.#chunked = opts.enableChunkedPrefill ?? true;
    this.prefixCaching = opts.enablePrefixCaching ?? true;
    this.#timeScale = opts.timeScale ?? 1;
    this.#seed = opts.seed ?? 0;
    this.#sample = opts.sampleToken ?? ((r) => 1000 + Math.floor(r * 1000));
    this.#eos = opts.eosTokenId ?? 128009;
    this.#stopP = opts.stopProbability ?? 0;
    this.#observer = opts.observer;
  }

  /** Queues a request; work starts at once if the engine is idle. */
  submit(req: SimEngineRequest, cb: SimEngineCallbacks = {}): SimRequestHandle {
    const n = req.promptTokens.length;
    if (n === 0) throw new KvrError('KVR_ERR_BAD_REQUEST', 'the prompt is empty', { param: 'prompt' });
    if (!(req.maxTokens >= 1)) throw new KvrError('KVR_ERR_BAD_REQUEST', 'max_tokens must be at least 1', { param: 'max_tokens' });
    if (Math.ceil((n + 1) / this.blockSize) > this.blockManager.numBlocks) {
      throw new KvrError('KVR_ERR_CONTEXT_TOO_LONG', `the prompt (${n} tokens) does not fit in the KV cache`, { param: 'prompt' });
    }
    const r = new Req(req.id, req.promptTokens, req.maxTokens, req.ignoreEos ?? false, cb, this.#clock.now(), this.#seed, this.blockSize);
    if (req.cachedPrefixTokens !== undefined) r.presetCached = Math.max(0, Math.min(Math.floor(req.cachedPrefixTokens), n - 1));
    r.holdBlocks = req.holdBlocks === true;
    this.#waiting.push(r);
    this.#numWaiting++;
    this.#kick();
    return { id: req.id, abort: () => this.#abort(r) };
  }

  /** Current statistics (histograms are live objects). */
  stats(): SimEngineStats {
    const s = this.#stats;
    return {
      running: this.#running.length,
      waiting: this.#numWaiting,
      kvUsage: this.blockManager.usage,
      numGpuBlocks: this.blockManager.numBlocks,
      blockSize: this.blockSize,
      prefixCacheQueries: s.queries,
      prefixCacheHits: s.hits,
      promptTokens: s.prompt,
      generationTokens: s.generation,
      requestSuccess: s.success,
      preemptions: s.preemptions,
      steps: s.steps,
      ttft: this.#ttft,
      itl: this.#itl,
      e2e: this.#e2e,
      queueTime: this.#queue,
    };
  }

  /** Sum of the durations of all steps since start or the last reset (ms, time scale included). */
  get busyMs(): number {
    return this.#busyMs;
  }

  /** Whether a step is in flight or work is queued. */
  get busy(): boolean {
    return this.#timer !== undefined || this.#running.length > 0 || this.#numWaiting > 0;
  }

  /** vLLM's reset_prefix_cache: drops cached blocks if none is in use; returns whether it did. */
  resetPrefixCache(): boolean {
    return this.blockManager.resetPrefixCache();
  }

  /**
   * A restart: in-flight requests fail (onError), cache, counters and histograms are cleared.
   * `clearEvent` false: no AllBlocksCleared (a restarted vLLM is a new process and sends none).
   */
  reset(clearEvent = true): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const victims = [...this.#running, ...this.#waiting.toArray().filter((r) => r.state === WAITING)];
    this.#running = [];
    this.#waiting.clear();
    this.#numWaiting = 0;
    this.#scheduled = [];
    for (const r of victims) r.state = DONE;
    this.blockManager.reset(clearEvent);
    this.#stats = { queries: 0, hits: 0, prompt: 0, generation: 0, success: 0, preemptions: 0, steps: 0 };
    this.#busyMs = 0;
    for (const h of [this.#ttft, this.#itl, this.#e2e, this.#queue]) h.reset();
    const err = new KvrError('KVR_ERR_SIM_DOWN', 'the simulated replica restarted; retry the request');
    for (const r of victims) r.cb.onError?.(err);
  }

  #observe(kind: 'ttft' | 'itl' | 'e2e' | 'queue', h: LatencyHistogram, ms: number): void {
    const s = ms / 1000;
    h.observe(s);
    this.#observer?.(kind, s);
  }

  #abort(r: Req): void {
    if (r.state === DONE) return;
    if (r.state === WAITING) {
      this.#numWaiting--;
    } else {
      this.blockManager.free(r.blocks);
      r.blocks = [];
      const i = this.#running.indexOf(r);
      if (i >= 0) this.#running.splice(i, 1);
    }
    r.state = DONE;
  }

  #kick(): void {
    if (this.#timer === undefined) this.#startStep();
  }

  #preempt(victim: Req): void {
    this.blockManager.free(victim.blocks);
    victim.blocks = [];
    victim.numComputed = 0;
    victim.numCachedBlocks = 0;
    victim.state = WAITING;
    this.#waiting.pushFront(victim);
    this.#numWaiting++;
    this.#stats.preemptions++;
  }

  #startStep(): void {
    const bm = this.blockManager;
    const bs = this.blockSize;
    const sched = this.#scheduled;
    sched.length = 0;
    let budget = this.#maxBatched;
    let pTok = 0;
    let pCtx = 0;
    let dec = 0;
    let dCtx = 0;
    let preempted = false;
    const running = this.#running;
    for (let i = 0; i < running.length && budget > 0; i++) {
      const r = running[i];
      const n = Math.min(r.numTokens - r.numComputed, budget);
      const need = Math.ceil((r.numComputed + n) / bs) - r.blocks.length;
      let ok = true;
      while (need > 0 && !bm.allocate(need, r.blocks)) {
        const victim = running.pop()!;
        this.#preempt(victim);
        preempted = true;
        if (victim === r) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
      r.scheduled = n;
      budget -= n;
      sched.push(r);
      if (r.numOutput > 0 && n === 1 && r.numComputed === r.numTokens - 1) {
        dec++;
        dCtx += r.numComputed + 1;
      } else {
        pTok += n;
        pCtx += this.#model.chunkContextSum(r.numComputed, n);
      }
      this.#cacheScheduled(r, n);
    }
    while (!preempted && this.#numWaiting > 0 && running.length < this.#maxSeqs && budget > 0) {
      const r = this.#waiting.peek()!;
      if (r.state === DONE) {
        this.#waiting.shift();
        continue;
      }
      extendBlockLanes(r.prompt, bs, r.hashes, r.out);
      const hitBlocks: number[] = [];
      const hitTokens =
        r.presetCached !== undefined && !r.everScheduled ? r.presetCached : this.prefixCaching ? bm.findPrefixLanes(r.hashes, r.numTokens, hitBlocks) : 0;
      const remaining = r.numTokens - hitTokens;
      let n = Math.min(remaining, budget);
      if (!this.#chunked && n < remaining) {
        if (budget < this.#maxBatched) break;
        n = remaining;
      }
      const fresh = Math.ceil((hitTokens + n) / bs) - hitBlocks.length;
      if (!bm.canAllocate(hitBlocks, fresh)) break;
      bm.touch(hitBlocks);
      r.blocks = hitBlocks;
      bm.allocate(fresh, r.blocks);
      r.numComputed = hitTokens;
      r.numCachedBlocks = hitTokens / bs;
      this.#waiting.shift();
      this.#numWaiting--;
      r.state = RUNNING;
      running.push(r);
      if (!r.everScheduled) {
        r.everScheduled = true;
        r.cachedTokens = hitTokens;
        if (this.prefixCaching) {
          this.#stats.queries += r.numTokens;
          this.#stats.hits += hitTokens;
        }
        this.#stats.prompt += r.numTokens;
        this.#observe('queue', this.#queue, this.#clock.now() - r.arrivalMs);
        r.cb.onStart?.();
      }
      r.scheduled = n;
      budget -= n;
      sched.push(r);
      pTok += n;
      pCtx += this.#model.chunkContextSum(r.numComputed, n);
      this.#cacheScheduled(r, n);
    }
    if (sched.length === 0) {
      if (running.length === 0 && this.#numWaiting > 0) this.#dropUnfittable();
      return;
    }
    this.#stats.steps++;
    const ms = this.#model.stepMs(pTok, pCtx, dec, dCtx) * this.#timeScale;
    this.#busyMs += ms;
    this.#timer = this.#clock.setTimeout(this.#onStepDone, ms);
  }

  /** Nothing runs yet the head request cannot be admitted: it can never fit, so fail it. */
  #dropUnfittable(): void {
    const r = this.#waiting.shift()!;
    this.#numWaiting--;
    r.state = DONE;
    r.cb.onError?.(new KvrError('KVR_ERR_OVERLOADED', `request ${r.id} does not fit in the KV cache`));
    this.#startStep();
  }

  /**
   * Registers the full blocks this step will compute for `r` (scheduling `n` tokens) in the
   * prefix cache now, as vLLM v1's `allocate_slots` does: a request admitted later in the same
   * step (an identical prompt) already hits them, and BlockStored goes out at scheduling time.
   */
  #cacheScheduled(r: Req, n: number): void {
    const full = Math.floor((r.numComputed + n) / this.blockSize);
    if (full <= r.numCachedBlocks) return;
    extendBlockLanes(r.prompt, this.blockSize, r.hashes, r.out);
    if (this.prefixCaching) this.blockManager.cacheBlocksLanes(r.blocks, r.hashes, r.prompt, r.numCachedBlocks, full, r.out);
    r.numCachedBlocks = full;
  }

  #finishStep(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    const bm = this.blockManager;
    const bs = this.blockSize;
    // A callback below may start the next step (a submit from onFinish): it fills the other buffer.
    const sched = this.#scheduled;
    this.#scheduled = this.#spare;
    this.#spare = sched;
    let finished = false;
    for (let i = 0; i < sched.length; i++) {
      const r = sched[i];
      if (r.state !== RUNNING) continue;
      r.numComputed += r.scheduled;
      if (r.numComputed !== r.numTokens) continue;
      const u = r.next();
      const tok = !r.ignoreEos && this.#stopP > 0 && r.next() < this.#stopP ? this.#eos : this.#sample(u);
      r.out.push(tok);
      r.numTokens++;
      const idx = r.numOutput++;
      this.#stats.generation++;
      if (idx === 0) {
        this.#observe('ttft', this.#ttft, now - r.arrivalMs);
        r.cb.onFirstToken?.({ cachedTokens: r.cachedTokens });
      } else {
        this.#observe('itl', this.#itl, now - r.lastTokenMs);
      }
      r.lastTokenMs = now;
      if (r.state !== RUNNING) continue;
      r.cb.onToken?.(tok, idx);
      if (r.state !== RUNNING) continue;
      const stop = !r.ignoreEos && tok === this.#eos;
      if (stop || r.numOutput >= r.maxTokens) {
        r.state = DONE;
        const held = r.holdBlocks ? r.blocks : undefined;
        if (held === undefined) bm.free(r.blocks);
        r.blocks = [];
        finished = true;
        this.#stats.success++;
        this.#observe('e2e', this.#e2e, now - r.arrivalMs);
        r.cb.onFinish?.({
          promptTokens: r.numTokens - r.numOutput,
          completionTokens: r.numOutput,
          cachedTokens: r.cachedTokens,
          finishReason: stop ? 'stop' : 'length',
          ...(held !== undefined ? { heldBlocks: held } : {}),
        });
      }
    }
    if (finished) this.#running = this.#running.filter((r) => r.state === RUNNING);
    this.#kick();
  }
}
