/**
 * random-picker (baseline): ignores scores; a uniformly random order of the candidates
 * (Fisher-Yates with the injected Rng), the first being the pick. No parameters.
 */
import { z } from 'zod';
import type { Endpoint } from '../../core/endpoint.js';
import { randInt, type Rng } from '../../core/rng.js';
import type { PluginDefinition } from '../plugin-registry.js';
import type { Picker, SchedulingContext } from '../types.js';

const params = z.strictObject({});

/** Picks uniformly at random. */
export class RandomPicker implements Picker {
  readonly type = 'random-picker';
  readonly #rng: Rng;

  constructor(readonly name: string, rng: Rng) {
    this.#rng = rng;
  }

  pick(_ctx: SchedulingContext, candidates: readonly Endpoint[], _totals?: Float64Array): number[] {
    const order = Array.from({ length: candidates.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = randInt(this.#rng, i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    return order;
  }
}

/** Registry entry of {@link RandomPicker}. */
export const randomPickerPlugin: PluginDefinition<z.infer<typeof params>> = {
  type: 'random-picker',
  kind: 'picker',
  description: 'uniformly random (baseline)',
  params,
  create: (name, _p, deps) => new RandomPicker(name, deps.rng),
};
