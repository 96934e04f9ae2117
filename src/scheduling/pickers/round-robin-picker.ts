/**
 * round-robin-picker (baseline): ignores scores; the n-th pick takes candidate n mod count and
 * ranks the others after it in rotation. The counter is per picker instance. No parameters.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Picker, SchedulingContext } from '../types.js';

const params = z.strictObject({});

/** Picks candidates in turn. */
export class RoundRobinPicker implements Picker {
  readonly type = 'round-robin-picker';
  #next = 0;

  constructor(readonly name: string = 'round-robin-picker') {}

  pick(_ctx: SchedulingContext, candidates: readonly Endpoint[], _totals?: Float64Array): number[] {
    const n = candidates.length;
    if (n === 0) return [];
    const start = this.#next % n;
    this.#next = (this.#next + 1) % 1_000_000_007;
    const order = new Array<number>(n);
    for (let i = 0; i < n; i++) order[i] = (start + i) % n;
    return order;
  }
}

/** Registry entry of {@link RoundRobinPicker}. */
export const roundRobinPickerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'round-robin-picker',
  kind: 'picker',
  description: 'candidates in turn (baseline)',
  params,
  create: (name) => new RoundRobinPicker(name),
};
