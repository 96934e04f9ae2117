/**
 * Engine dialects of the simulator: the same simulated engine behind the HTTP surface of SGLang
 * or llama.cpp instead of vLLM (metric names, /health, server info, /tokenize format, usage and
 * timings shapes, llama.cpp's slot cache), so integration tests cover all three engines.
 * The replica server and the OpenAI handlers call these hooks; vLLM needs none.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimEngine, SimEngineCallbacks, SimEngineRequest, SimEngineResult, SimRequestHandle } from '../engine.js';
import type { SimTokenizer } from '../tokenizer.js';

/** Engine whose HTTP surface a replica speaks. */
export type SimDialectName = 'vllm' | 'sglang' | 'llamacpp';

/** Dialect options of a replica. */
export interface SimDialectOptions {
  engine: SimDialectName;
  /** llama.cpp: server slots (`-np`, default 4). */
  parallel?: number;
  /**
   * llama.cpp build to mimic: `new` (default: usage.prompt_tokens_details.cached_tokens and
   * timings.cache_n, no kv_cache_usage_ratio) or `old` (usage without details, timings without
   * cache_n, kv_cache_usage_ratio present).
   */
  llamacppBuild?: 'old' | 'new';
}

/** What a dialect gets from its replica. */
export interface DialectContext {
  modelName: string;
  engine: SimEngine;
  tokenizer: SimTokenizer;
  blockSize: number;
  numBlocks: number;
  /** Current clock time (ms). */
  now(): number;
}

/** Hooks of one dialect. */
export interface SimDialect {
  readonly name: SimDialectName;
  /** `owned_by` of /v1/models. */
  readonly modelsOwner: string;
  /** Engine option overrides (llama.cpp: no block prefix cache, `parallel` sequences). */
  readonly engineOverrides: { enablePrefixCaching?: boolean; maxNumSeqs?: number };
  /** Whether /metrics waits for the engine's current step to end (llama.cpp's task queue). */
  readonly metricsBlockDuringStep: boolean;
  /** Handles a route of its own; returns false to let the replica's vLLM routes handle it. */
  route(path: string, query: URLSearchParams, method: string, req: IncomingMessage, res: ServerResponse, body: () => Promise<Record<string, unknown>>): Promise<boolean>;
  /** Submits a request to the engine (llama.cpp: through its slots). */
  submit?(req: SimEngineRequest, cb: SimEngineCallbacks): SimRequestHandle;
  /** The response's `usage` object. */
  usage?(r: SimEngineResult): object;
  /** Extra top-level fields of the final response body / final stream chunk (llama.cpp `timings`). */
  finalExtras?(r: SimEngineResult, elapsedMs: { promptMs: number; predictedMs: number }): Record<string, unknown>;
  /** A restart: caches, counters, start time. */
  restart(): void;
}
