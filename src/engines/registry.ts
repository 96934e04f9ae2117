/** Every engine adapter by kind. */
import type { EngineKind } from '../core/endpoint.js';
import { llamacppAdapter } from './llamacpp.js';
import { openaiGenericAdapter } from './openai-generic.js';
import { sglangAdapter } from './sglang.js';
import type { EngineAdapter, EngineUsage } from './types.js';
import { vllmAdapter } from './vllm.js';

/** The adapters, vLLM first. */
export const ENGINE_ADAPTERS: readonly EngineAdapter[] = [vllmAdapter, sglangAdapter, llamacppAdapter, openaiGenericAdapter];

/** Engine kinds accepted by `--engine` / `;engine=`. */
export const ENGINE_KINDS: readonly EngineKind[] = ENGINE_ADAPTERS.map((a) => a.kind);

/** The adapter of `kind`. */
export function adapterFor(kind: EngineKind): EngineAdapter {
  return ENGINE_ADAPTERS.find((a) => a.kind === kind) ?? openaiGenericAdapter;
}

/**
 * Usage of a response from an engine not known in advance (a probe through the router): the
 * first adapter that finds cached tokens wins (OpenAI usage, then llama.cpp timings, then
 * SGLang meta_info); else the plain OpenAI usage.
 */
export function readAnyUsage(response: unknown): EngineUsage | undefined {
  for (const a of [vllmAdapter, llamacppAdapter, sglangAdapter]) {
    const u = a.readUsage(response);
    if (u?.cachedTokens !== undefined) return u;
  }
  return openaiGenericAdapter.readUsage(response);
}
