/**
 * decode-filter (llm-d's): keeps endpoints that may run the decode leg.
 *
 * Algorithm: keep e iff role(e) is decode, prefill-decode, both (deprecated) or
 * encode-prefill-decode, or e has an empty role label (llm-d lets unlabeled pods decode).
 * Roles come from `llm-d.ai/role`, else the endpoint's `role=` option (endpoint-role.ts).
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Filter, SchedulingContext } from '../types.js';
import { DECODE_ROLES, endpointRole } from './endpoint-role.js';

/** See the file comment. */
export class DecodeFilter implements Filter {
  readonly type = 'decode-filter';
  constructor(readonly name: string) {}
  filter(_ctx: SchedulingContext, candidates: readonly Endpoint[]): readonly Endpoint[] {
    return candidates.filter((e) => {
      const r = endpointRole(e);
      return r === '' || DECODE_ROLES.has(r);
    });
  }
}

/** Plugin definition of `decode-filter`. */
export const decodeFilterPlugin: PluginDefinition<Record<string, never>> = {
  type: 'decode-filter',
  kind: 'filter',
  description: 'keeps endpoints whose role allows decoding (decode, prefill-decode)',
  params: z.strictObject({}),
  create: (name) => new DecodeFilter(name),
};
