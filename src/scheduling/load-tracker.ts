/**
 * The router's own in-flight load per endpoint, measured in WORK and updated at pick time, so a
 * burst does not land on one endpoint because every request saw the same stale engine metrics.
 *
 * Per endpoint (dense `Endpoint.index`, typed arrays):
 * - prefillTokens: prompt tokens not computed yet = estimated prompt tokens minus the tokens the
 *   prefix scorer predicted cached on that endpoint (when it memoized a prediction);
 * - decodingSeqs: requests past their first token, still generating;
 * - inflight: requests picked and not completed (prefilling + decoding).
 *
 * Life of a request: onPicked adds its prefill tokens and one in-flight request; onFirstToken
 * moves it from prefill to decoding; onComplete removes whatever it still holds (exactly once:
 * the request's own entry, kept in its memo, says what to remove).
 *
 *   work = prefillTokens / tokensPerDecodeEquivalent + inflight
 *
 * `tokensPerDecodeEquivalent` (default 256): how many uncomputed prompt tokens weigh as much as
 * one in-flight sequence. A request in the batch costs every step a slot and KV; 256 tokens is
 * about one chunked-prefill slice of a step on a mid-size GPU. Each in-flight request counts at
 * least 1, so even fully cached requests spread.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { InferenceRequest } from '../core/request.js';
import { predictedCachedTokens, promptTokensOf } from '../prefix/prefix-prediction.js';
import type { RequestObserver, SchedulingContext } from './types.js';

/** Default prompt tokens that weigh as much as one in-flight sequence. */
export const DEFAULT_TOKENS_PER_DECODE_EQUIVALENT = 256;

const ENTRY_KEY = 'load-tracker/entry';

interface LoadEntry {
  endpointId: string;
  index: number;
  prefill: number;
  decoding: boolean;
}

/** One endpoint's in-flight load. */
export interface EndpointLoad {
  prefillTokens: number;
  decodingSeqs: number;
  inflight: number;
  work: number;
}

/** Tracks in-flight work per endpoint; see the file comment. */
export class LoadTracker implements RequestObserver {
  readonly tokensPerDecodeEquivalent: number;
  #prefill = new Float64Array(16);
  #decoding = new Int32Array(16);
  #inflight = new Int32Array(16);
  #ids: (string | undefined)[] = [];
  /** Other router replicas' in-flight load (src/sync), by endpoint id; kept apart from local work. */
  #remote = new Map<string, { prefillTokens: number; inflight: number }>();

  constructor(tokensPerDecodeEquivalent = DEFAULT_TOKENS_PER_DECODE_EQUIVALENT) {
    if (!(tokensPerDecodeEquivalent > 0)) throw new RangeError('tokensPerDecodeEquivalent must be > 0');
    this.tokensPerDecodeEquivalent = tokensPerDecodeEquivalent;
  }

  /** Work units in flight on `endpoint` (see the file comment); 0 when unknown. */
  work(endpoint: Endpoint): number {
    const r = this.#remote.size > 0 ? this.#remote.get(endpoint.id) : undefined;
    const remote = r !== undefined ? r.prefillTokens / this.tokensPerDecodeEquivalent + r.inflight : 0;
    const i = endpoint.index;
    if (i >= this.#ids.length || this.#ids[i] !== endpoint.id) return remote;
    return this.#prefill[i] / this.tokensPerDecodeEquivalent + this.#inflight[i] + remote;
  }

  /**
   * Sets the in-flight load other router replicas report on `endpointId` (src/sync/router-sync.ts
   * keeps the per-request entries and their expiry; this holds only the sums). Zeros forget it.
   * `work()` adds it to the local work; `load()` stays local-only.
   */
  setRemote(endpointId: string, prefillTokens: number, inflight: number): void {
    if (prefillTokens <= 0 && inflight <= 0) this.#remote.delete(endpointId);
    else this.#remote.set(endpointId, { prefillTokens: Math.max(0, prefillTokens), inflight: Math.max(0, inflight) });
  }

  /** Other replicas' in-flight load on `endpointId` (zeros when none). */
  remoteLoad(endpointId: string): { prefillTokens: number; inflight: number } {
    const r = this.#remote.get(endpointId);
    return r !== undefined ? { ...r } : { prefillTokens: 0, inflight: 0 };
  }

  /** A snapshot of `endpoint`'s local in-flight load (for dashboards and tests); `work` includes remote load. */
  load(endpoint: Endpoint): EndpointLoad {
    const i = endpoint.index;
    if (i >= this.#ids.length || this.#ids[i] !== endpoint.id) return { prefillTokens: 0, decodingSeqs: 0, inflight: 0, work: this.work(endpoint) };
    return { prefillTokens: this.#prefill[i], decodingSeqs: this.#decoding[i], inflight: this.#inflight[i], work: this.work(endpoint) };
  }

  onPicked(ctx: SchedulingContext, endpoint: Endpoint): void {
    const req = ctx.request;
    this.#release(req);
    const prompt = promptTokensOf(req);
    const prefill = Math.max(0, prompt - predictedCachedTokens(req, endpoint, prompt));
    const i = this.#slot(endpoint);
    this.#prefill[i] += prefill;
    this.#inflight[i] += 1;
    const entry: LoadEntry = { endpointId: endpoint.id, index: i, prefill, decoding: false };
    req.memo.set(ENTRY_KEY, entry);
  }

  onFirstToken(ctx: SchedulingContext, endpoint: Endpoint): void {
    const e = ctx.request.memo.get(ENTRY_KEY) as LoadEntry | undefined;
    if (e === undefined || e.decoding || e.endpointId !== endpoint.id || this.#ids[e.index] !== e.endpointId) return;
    this.#prefill[e.index] = Math.max(0, this.#prefill[e.index] - e.prefill);
    this.#decoding[e.index] += 1;
    e.prefill = 0;
    e.decoding = true;
  }

  onComplete(ctx: SchedulingContext, endpoint: Endpoint): void {
    const e = ctx.request.memo.get(ENTRY_KEY) as LoadEntry | undefined;
    if (e === undefined || e.endpointId !== endpoint.id) return;
    this.#release(ctx.request);
  }

  /** Forgets an endpoint's load (removed from the pool). */
  removeEndpoint(endpoint: Pick<Endpoint, 'id' | 'index'>): void {
    const i = endpoint.index;
    if (this.#ids[i] !== endpoint.id) return;
    this.#ids[i] = undefined;
    this.#prefill[i] = 0;
    this.#decoding[i] = 0;
    this.#inflight[i] = 0;
  }

  #release(req: InferenceRequest): void {
    const e = req.memo.get(ENTRY_KEY) as LoadEntry | undefined;
    if (e === undefined) return;
    req.memo.delete(ENTRY_KEY);
    const i = e.index;
    if (this.#ids[i] !== e.endpointId) return;
    this.#prefill[i] = Math.max(0, this.#prefill[i] - e.prefill);
    if (e.decoding) this.#decoding[i] = Math.max(0, this.#decoding[i] - 1);
    this.#inflight[i] = Math.max(0, this.#inflight[i] - 1);
  }

  #slot(endpoint: Endpoint): number {
    const i = endpoint.index;
    if (i >= this.#prefill.length) {
      let len = this.#prefill.length;
      while (len <= i) len *= 2;
      const p = new Float64Array(len);
      p.set(this.#prefill);
      const d = new Int32Array(len);
      d.set(this.#decoding);
      const f = new Int32Array(len);
      f.set(this.#inflight);
      this.#prefill = p;
      this.#decoding = d;
      this.#inflight = f;
    }
    if (this.#ids[i] !== endpoint.id) {
      this.#ids[i] = endpoint.id;
      this.#prefill[i] = 0;
      this.#decoding[i] = 0;
      this.#inflight[i] = 0;
    }
    return i;
  }
}
