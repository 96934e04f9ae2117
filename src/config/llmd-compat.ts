/**
 * Rewrites llm-d parameters kvroute's plugins spell differently, so llm-d's sample configs
 * load unchanged (applied to the raw document before validation):
 *
 * - `prefix-cache-scorer{blockSizeTokens, autoTune}` (llm-d v0.4+): blockSizeTokens -> kvroute's
 *   `hashBlockSize` = 4 characters per token x blockSizeTokens; `autoTune: false` is dropped
 *   (kvroute's block size is fixed); `autoTune: true` is an error.
 * - `approx-prefix-cache-producer{blockSizeTokens, maxPrefixTokensToMatch,
 *   lruCapacityPerServer}`: applied to each prefix-cache-scorer that does not set its own
 *   (see scheduling/producers/approx-prefix-cache-producer.ts).
 */
import type { EndpointPickerConfigDoc } from './config-schema.js';

/** llm-d's approximate prefix: characters per token. */
const CHARS_PER_TOKEN = 4;

type Params = Record<string, unknown>;

/** Rewrites `doc` in place; problems go to `errors`. */
export function applyLlmdCompat(doc: EndpointPickerConfigDoc, errors: string[]): void {
  const producer = doc.plugins.find((p) => p.type === 'approx-prefix-cache-producer');
  const prod = (producer?.parameters ?? {}) as Params;
  doc.plugins.forEach((p, i) => {
    if (p.type !== 'prefix-cache-scorer') return;
    const at = `plugins[${i}].parameters`;
    const params: Params = { ...(p.parameters ?? {}) };
    if (params.autoTune === true) {
      errors.push(`${at}.autoTune: true (block size from each pod's engine) is not supported by kvroute; set autoTune: false and blockSizeTokens`);
    }
    if (params.autoTune === false) delete params.autoTune;
    const bst = params.blockSizeTokens ?? prod.blockSizeTokens;
    if (params.blockSizeTokens !== undefined || (prod.blockSizeTokens !== undefined && params.hashBlockSize === undefined)) {
      if (!Number.isInteger(bst) || (bst as number) < 1) errors.push(`${at}.blockSizeTokens: must be an integer >= 1`);
      else if (params.hashBlockSize === undefined) params.hashBlockSize = (bst as number) * CHARS_PER_TOKEN;
      delete params.blockSizeTokens;
    }
    if (prod.maxPrefixTokensToMatch !== undefined && params.maxPrefixBlocksToMatch === undefined) {
      const tokens = prod.maxPrefixTokensToMatch;
      const blockTokens = typeof bst === 'number' && bst >= 1 ? bst : 16;
      if (typeof tokens === 'number' && tokens >= 1) params.maxPrefixBlocksToMatch = Math.min(65_536, Math.ceil(tokens / blockTokens));
    }
    if (prod.lruCapacityPerServer !== undefined && params.lruCapacityPerServer === undefined) params.lruCapacityPerServer = prod.lruCapacityPerServer;
    p.parameters = params;
  });
}
