/** Every engine adapter by kind. */
import type { EngineKind } from '../core/endpoint.js';
import { llamacppAdapter } from './llamacpp.js';
import { openaiGenericAdapter } from './openai-generic.js';
import { sglangAdapter } from './sglang.js';
import type { EngineAdapter } from './types.js';
import { vllmAdapter } from './vllm.js';

/** The adapters, vLLM first. */
export const ENGINE_ADAPTERS: readonly EngineAdapter[] = [vllmAdapter, sglangAdapter, llamacppAdapter, openaiGenericAdapter];

/** Engine kinds accepted by `--engine` / `;engine=`. */
export const ENGINE_KINDS: readonly EngineKind[] = ENGINE_ADAPTERS.map((a) => a.kind);

/** The adapter of `kind`. */
export function adapterFor(kind: EngineKind): EngineAdapter {
  return ENGINE_ADAPTERS.find((a) => a.kind === kind) ?? openaiGenericAdapter;
}
