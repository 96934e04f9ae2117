/**
 * prefix-based-pd-decider (llm-d's): disaggregate only when the prompt's part not already
 * cached on the CHOSEN decode endpoint is long enough to be worth a remote prefill.
 *
 * Algorithm (P = prompt tokens, C = tokens predicted cached on the decode endpoint, from the
 * decode profile's prefix prediction: cached blocks x block size, unweighted, capped at P):
 * - `nonCachedTokens` = 0: never disaggregate (llm-d: 0 disables the decider);
 * - disaggregate iff (promptTokens = 0 or P >= promptTokens) and P >= nonCachedTokens and
 *   P - C >= nonCachedTokens.
 * P is exact when a precise prefix scorer tokenized the request, else ~4 characters per token
 * (llm-d's estimate).
 *
 * Parameters: `nonCachedTokens` (default 16, llm-d's sample), `promptTokens` (default 0 = no
 * minimum prompt length).
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { predictedCachedTokens, promptTokensOf } from '../../prefix/prefix-prediction.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { PdDecider, PdVerdict } from '../profiles/profile-handler-types.js';
import type { SchedulingContext } from '../types.js';

const params = z.strictObject({
  nonCachedTokens: z.number().int().min(0).default(16),
  promptTokens: z.number().int().min(0).default(0),
});

/** Parameters of {@link PrefixBasedPdDecider}. */
export type PrefixBasedPdDeciderParams = z.infer<typeof params>;

/** The pure rule, for tests and explanations: see the file comment. */
export function prefixBasedVerdict(p: PrefixBasedPdDeciderParams, promptTokens: number, cachedTokens: number): PdVerdict {
  const c = Math.min(cachedTokens, promptTokens);
  const v = (disaggregate: boolean, reason: string): PdVerdict => ({ disaggregate, reason, promptTokens, cachedTokens: c });
  if (p.nonCachedTokens === 0) return v(false, 'decider disabled (nonCachedTokens 0)');
  if (p.promptTokens > 0 && promptTokens < p.promptTokens) return v(false, `prompt ${promptTokens} < promptTokens ${p.promptTokens}`);
  if (promptTokens < p.nonCachedTokens) return v(false, `prompt ${promptTokens} < nonCachedTokens ${p.nonCachedTokens}`);
  const nonCached = promptTokens - c;
  if (nonCached < p.nonCachedTokens) return v(false, `non-cached ${nonCached} < ${p.nonCachedTokens} on decode endpoint`);
  return v(true, `non-cached ${nonCached} >= ${p.nonCachedTokens}`);
}

/** See the file comment. */
export class PrefixBasedPdDecider implements PdDecider {
  readonly type = 'prefix-based-pd-decider';
  constructor(
    readonly name: string,
    readonly params: PrefixBasedPdDeciderParams,
  ) {}

  decide(ctx: SchedulingContext, decode: Endpoint): PdVerdict {
    const req = ctx.request;
    const prompt = promptTokensOf(req);
    return prefixBasedVerdict(this.params, prompt, predictedCachedTokens(req, decode, prompt));
  }
}

/** Plugin definition of `prefix-based-pd-decider`. */
export const prefixBasedPdDeciderPlugin: PluginDefinition<PrefixBasedPdDeciderParams> = {
  type: 'prefix-based-pd-decider',
  kind: 'decider',
  description: 'prefill remotely when the prompt part not cached on the chosen decode endpoint is >= nonCachedTokens',
  params,
  consumes: ['prefix-prediction'],
  create: (name, p) => new PrefixBasedPdDecider(name, p),
};
