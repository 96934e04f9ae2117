/**
 * disagg-profile-handler (llm-d's, P/D part): decode-first disaggregation.
 *
 * Algorithm:
 * 1. Run the decode profile (`profiles.decode`, default `decode`): its pick is the primary
 *    result, the endpoint the request is sent to.
 * 2. With no `deciders.prefill`, stop: every request is served by the decode endpoint alone.
 * 3. Ask the prefill decider (with the decode profile's cycle state and the chosen decode
 *    endpoint) whether to disaggregate.
 * 4. If yes, run the prefill profile (`profiles.prefill`, default `prefill`): its pick becomes
 *    `SchedulingResult.prefill`. If it finds no endpoint, or picks the decode endpoint itself,
 *    the request is served aggregated and the verdict says why.
 *
 * Parameters: `profiles{decode, prefill}`, `deciders{prefill}`, `stageOrder` (only
 * `decode-first`). Encode disaggregation (`profiles.encode`, `deciders.encode`) is rejected:
 * kvroute has no encode stage.
 */
import { z } from 'zod';
import type { PluginDefinition } from '../plugin-registry.js';
import type { ProfileHandler } from './profile-handler-types.js';

const params = z.strictObject({
  stageOrder: z.literal('decode-first', { error: 'only "decode-first" is supported (the decode pick decides whether to prefill remotely)' }).optional(),
  profiles: z
    .strictObject({
      decode: z.string().min(1).default('decode'),
      prefill: z.string().min(1).default('prefill'),
      encode: z.never({ error: 'encode disaggregation is not supported by kvroute; remove profiles.encode' }).optional(),
    })
    .default({ decode: 'decode', prefill: 'prefill' }),
  deciders: z
    .strictObject({
      prefill: z.string().min(1).optional(),
      encode: z.never({ error: 'encode disaggregation is not supported by kvroute; remove deciders.encode' }).optional(),
    })
    .default({}),
});

/** Parameters of `disagg-profile-handler`. */
export type DisaggProfileHandlerParams = z.infer<typeof params>;

/** Plugin definition of `disagg-profile-handler`. */
export const disaggProfileHandlerPlugin: PluginDefinition<DisaggProfileHandlerParams> = {
  type: 'disagg-profile-handler',
  kind: 'profile-handler',
  description: 'decode profile first, then (if the prefill decider says so) the prefill profile',
  params,
  create(name, p): ProfileHandler {
    return {
      type: 'disagg-profile-handler',
      name,
      mode: 'disagg',
      decodeProfile: p.profiles.decode,
      prefillProfile: p.profiles.prefill,
      ...(p.deciders.prefill !== undefined ? { prefillDecider: p.deciders.prefill } : {}),
    };
  },
};
