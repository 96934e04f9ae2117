/**
 * approx-prefix-cache-producer (llm-d's): in llm-d it owns the approximate prefix index that
 * `prefix-cache-scorer` reads. In kvroute the scorer owns its index, so the config loader
 * applies this producer's parameters to every `prefix-cache-scorer` of the config that does not
 * set them itself (config/llmd-compat.ts):
 *
 *   blockSizeTokens (default 16)  -> hashBlockSize = 4 x blockSizeTokens characters
 *   maxPrefixTokensToMatch        -> maxPrefixBlocksToMatch = ceil(tokens / blockSizeTokens)
 *   lruCapacityPerServer          -> lruCapacityPerServer
 *   autoTune                      -> only false is accepted (kvroute hashes text with a fixed
 *                                    block size; it cannot follow each pod's engine block size)
 *
 * At run time it does nothing itself; it is declared so the config reads as llm-d's does.
 */
import { z } from 'zod';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Plugin } from '../types.js';

const params = z.strictObject({
  blockSizeTokens: z.number().int().min(1).max(1024).optional(),
  maxPrefixTokensToMatch: z.number().int().min(1).optional(),
  lruCapacityPerServer: z.number().int().min(1).optional(),
  autoTune: z.literal(false, { error: 'autoTune: true (block size taken from each pod) is not supported; set autoTune: false and blockSizeTokens' }).optional(),
});

/** Parameters of `approx-prefix-cache-producer`. */
export type ApproxPrefixCacheProducerParams = z.infer<typeof params>;

/** Plugin definition of `approx-prefix-cache-producer`. */
export const approxPrefixCacheProducerPlugin: PluginDefinition<ApproxPrefixCacheProducerParams> = {
  type: 'approx-prefix-cache-producer',
  kind: 'producer',
  description: "llm-d's approximate prefix index settings; applied to prefix-cache-scorer",
  params,
  create: (name): Plugin => ({ type: 'approx-prefix-cache-producer', name }),
};
