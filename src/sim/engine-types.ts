/** Types of the {@link SimEngine} API. */
import type { Clock } from '../core/clock.js';
import type { KvrError } from '../core/errors.js';
import type { KvCacheEvent } from './block-manager.js';
import type { LatencyHistogram } from './latency-histogram.js';
import type { StepModel, StepCoefficients } from './step-model.js';

/** Options of a SimEngine. */
export interface SimEngineOptions {
  clock: Clock;
  /** Step-time model or coefficients (default: the llama-3.1-8b profile). */
  stepModel?: StepModel | StepCoefficients;
  blockSize?: number;
  /** KV capacity in blocks (default 26,300). */
  numGpuBlocks?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  enableChunkedPrefill?: boolean;
  /**
   * Prefix caching (default true). False models a vLLM started without prefix caching: no cache
   * lookups, no cached blocks, and the prefix-cache counters never move (fault injection).
   */
  enablePrefixCaching?: boolean;
  /** Multiplies every step time (0.25 = 4x faster than the GPU). */
  timeScale?: number;
  /** Seed of the deterministic output tokens. */
  seed?: number;
  /** Maps a uniform r in [0,1) to an output token id (default: 1000 + floor(r * 1000)). */
  sampleToken?: (r: number) => number;
  /** End-of-sequence token id (default 128009). */
  eosTokenId?: number;
  /** Per-token probability of emitting EOS when ignoreEos is off (default 0). */
  stopProbability?: number;
  onKvEvent?: (ev: KvCacheEvent) => void;
  /** Receives each latency observation in seconds (for Prometheus histograms). */
  observer?: (kind: 'ttft' | 'itl' | 'e2e' | 'queue', seconds: number) => void;
}

/** A request given to SimEngine.submit. */
export interface SimEngineRequest {
  id: string;
  promptTokens: readonly number[];
  maxTokens: number;
  ignoreEos?: boolean;
  /**
   * Prompt tokens already held by the request's slot (llama.cpp dialect, src/sim/dialects): used
   * instead of a block-cache lookup at first admission (at most promptTokens.length - 1).
   */
  cachedPrefixTokens?: number;
  /** P/D prefill side: do not free the blocks at finish; they come back in `heldBlocks`. */
  holdBlocks?: boolean;
}

/** Outcome of a finished request. */
export interface SimEngineResult {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  finishReason: 'length' | 'stop';
  /** With `holdBlocks`: the request's blocks, still referenced; the caller must free them. */
  heldBlocks?: number[];
}

/** Callbacks of one request; all run synchronously inside the engine. */
export interface SimEngineCallbacks {
  /** The request left the waiting queue for the first time. */
  onStart?(): void;
  onFirstToken?(info: { cachedTokens: number }): void;
  onToken?(tokenId: number, index: number): void;
  onFinish?(result: SimEngineResult): void;
  /** The request was dropped (restart, or it can never fit in the KV cache). */
  onError?(err: KvrError): void;
}

/** Handle of a submitted request. */
export interface SimRequestHandle {
  readonly id: string;
  /** Drops the request and frees its blocks; no further callback is called. */
  abort(): void;
}

/** A snapshot of engine statistics. */
export interface SimEngineStats {
  running: number;
  waiting: number;
  kvUsage: number;
  numGpuBlocks: number;
  blockSize: number;
  prefixCacheQueries: number;
  prefixCacheHits: number;
  promptTokens: number;
  generationTokens: number;
  requestSuccess: number;
  preemptions: number;
  steps: number;
  ttft: LatencyHistogram;
  itl: LatencyHistogram;
  e2e: LatencyHistogram;
  queueTime: LatencyHistogram;
}

