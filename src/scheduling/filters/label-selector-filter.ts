/**
 * label-selector-filter (llm-d's): keeps endpoints whose labels match a Kubernetes label
 * selector.
 *
 * Algorithm: e matches iff every `matchLabels` pair equals its label and every
 * `matchExpressions` term holds: In (label present and in values), NotIn (absent or not in
 * values), Exists, DoesNotExist. The role label `llm-d.ai/role` is filled in from the
 * endpoint's `role=` option when the endpoint has no such label. An empty selector matches all.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Filter, SchedulingContext } from '../types.js';
import { labelsWithRole } from './endpoint-role.js';

const expr = z
  .strictObject({
    key: z.string().min(1),
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist'], { error: 'operator must be In, NotIn, Exists or DoesNotExist' }),
    values: z.array(z.string()).optional(),
  })
  .refine((x) => (x.operator === 'In' || x.operator === 'NotIn' ? (x.values?.length ?? 0) > 0 : (x.values?.length ?? 0) === 0), {
    error: 'In/NotIn need a non-empty values list; Exists/DoesNotExist take no values',
  });

const params = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).default({}),
  matchExpressions: z.array(expr).default([]),
});

/** Parameters of {@link LabelSelectorFilter}. */
export type LabelSelectorParams = z.infer<typeof params>;

/** Whether `labels` match the selector `p`. */
export function matchesSelector(p: LabelSelectorParams, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(p.matchLabels)) if (labels[k] !== v) return false;
  for (const x of p.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, x.key);
    const v = labels[x.key];
    const inValues = has && (x.values ?? []).includes(v);
    if (x.operator === 'In' && !inValues) return false;
    if (x.operator === 'NotIn' && inValues) return false;
    if (x.operator === 'Exists' && !has) return false;
    if (x.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** See the file comment. */
export class LabelSelectorFilter implements Filter {
  readonly type = 'label-selector-filter';
  constructor(
    readonly name: string,
    readonly selector: LabelSelectorParams,
  ) {}
  filter(_ctx: SchedulingContext, candidates: readonly Endpoint[]): readonly Endpoint[] {
    return candidates.filter((e) => matchesSelector(this.selector, labelsWithRole(e)));
  }
}

/** Plugin definition of `label-selector-filter`. */
export const labelSelectorFilterPlugin: PluginDefinition<LabelSelectorParams> = {
  type: 'label-selector-filter',
  kind: 'filter',
  description: 'keeps endpoints whose labels match a Kubernetes label selector (matchLabels, matchExpressions)',
  params,
  create: (name, p) => new LabelSelectorFilter(name, p),
};
