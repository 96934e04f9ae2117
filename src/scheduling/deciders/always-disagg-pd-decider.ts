/**
 * always-disagg-pd-decider (llm-d's) and never-disagg-pd-decider (kvroute's): fixed verdicts,
 * for tests, benchmarks and turning disaggregation off without editing profiles.
 *
 * Algorithm: always -> disaggregate every request; never -> none. No parameters.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { promptTokensOf } from '../../prefix/prefix-prediction.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { PdDecider, PdVerdict } from '../profiles/profile-handler-types.js';
import type { SchedulingContext } from '../types.js';

/** A decider with a fixed verdict. */
export class FixedPdDecider implements PdDecider {
  constructor(
    readonly type: string,
    readonly name: string,
    readonly verdict: boolean,
  ) {}

  decide(ctx: SchedulingContext, _decode: Endpoint): PdVerdict {
    return { disaggregate: this.verdict, reason: this.verdict ? 'always' : 'never', promptTokens: promptTokensOf(ctx.request), cachedTokens: 0 };
  }
}

/** Plugin definition of `always-disagg-pd-decider`. */
export const alwaysDisaggPdDeciderPlugin: PluginDefinition<Record<string, never>> = {
  type: 'always-disagg-pd-decider',
  kind: 'decider',
  description: 'prefill every request on a prefill endpoint',
  params: z.strictObject({}),
  create: (name) => new FixedPdDecider('always-disagg-pd-decider', name, true),
};

/** Plugin definition of `never-disagg-pd-decider`. */
export const neverDisaggPdDeciderPlugin: PluginDefinition<Record<string, never>> = {
  type: 'never-disagg-pd-decider',
  kind: 'decider',
  description: 'never prefill remotely (decode endpoints serve everything)',
  params: z.strictObject({}),
  create: (name) => new FixedPdDecider('never-disagg-pd-decider', name, false),
};
