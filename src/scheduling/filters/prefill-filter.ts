/**
 * prefill-filter (llm-d's): keeps endpoints that may run the prefill leg.
 *
 * Algorithm: keep e iff role(e) is prefill, encode-prefill, prefill-decode, both (deprecated)
 * or encode-prefill-decode. Unlabeled endpoints are not prefill endpoints. Roles come from
 * `llm-d.ai/role`, else the endpoint's `role=` option (endpoint-role.ts).
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Filter, SchedulingContext } from '../types.js';
import { endpointRole, PREFILL_ROLES } from './endpoint-role.js';

/** See the file comment. */
export class PrefillFilter implements Filter {
  readonly type = 'prefill-filter';
  constructor(readonly name: string) {}
  filter(_ctx: SchedulingContext, candidates: readonly Endpoint[]): readonly Endpoint[] {
    return candidates.filter((e) => PREFILL_ROLES.has(endpointRole(e)));
  }
}

/** Plugin definition of `prefill-filter`. */
export const prefillFilterPlugin: PluginDefinition<Record<string, never>> = {
  type: 'prefill-filter',
  kind: 'filter',
  description: 'keeps endpoints whose role allows prefilling (prefill, prefill-decode)',
  params: z.strictObject({}),
  create: (name) => new PrefillFilter(name),
};
