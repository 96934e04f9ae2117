/**
 * Cost of treating stale / unreported load as neutral in the three load scorers
 * (src/scheduling/scorers/unknown-load.ts): the scorers as they are now against their previous
 * formulas inlined, 16 and 64 fresh candidates (the common case), interleaved rounds, median.
 *
 *   npm run build && node dist/bench/unknown-load-bench.js
 */
import type { Endpoint } from '../src/core/endpoint.js';
import { fakeEndpoint, fakeRequest } from '../src/scheduling/testing/fakes.js';
import { KvCacheUtilizationScorer } from '../src/scheduling/scorers/kv-cache-utilization-scorer.js';
import { LoadAwareScorer } from '../src/scheduling/scorers/load-aware-scorer.js';
import { QueueScorer } from '../src/scheduling/scorers/queue-scorer.js';

/** The three scorers' score() as they were before (same call structure as the current classes). */
const previous = [
  {
    score(_ctx: unknown, c: readonly Endpoint[], out: Float64Array): void {
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < c.length; i++) {
        const q = c[i].metrics.waiting;
        if (q < min) min = q;
        if (q > max) max = q;
      }
      const range = max - min;
      for (let i = 0; i < c.length; i++) out[i] = range > 0 ? (max - c[i].metrics.waiting) / range : 1;
    },
  },
  {
    score(_ctx: unknown, c: readonly Endpoint[], out: Float64Array): void {
      for (let i = 0; i < c.length; i++) {
        const q = c[i].metrics.waiting;
        out[i] = q <= 0 ? 0.5 : 0.5 * (1 - Math.min(q, 128) / 128);
      }
    },
  },
  {
    score(_ctx: unknown, c: readonly Endpoint[], out: Float64Array): void {
      for (let i = 0; i < c.length; i++) {
        const u = c[i].metrics.kvUsage;
        out[i] = u >= 1 ? 0 : u <= 0 || Number.isNaN(u) ? 1 : 1 - u;
      }
    },
  },
];

const scorers = [new QueueScorer(), new LoadAwareScorer(), new KvCacheUtilizationScorer()];
const ctx = { request: fakeRequest('x'), now: 0 };
function run(list: ReadonlyArray<{ score(ctx: never, c: readonly Endpoint[], out: Float64Array): unknown }>, c: readonly Endpoint[], out: Float64Array, tmp: Float64Array): void {
  out.fill(0);
  for (const s of list) {
    void s.score(ctx as never, c, tmp);
    for (let i = 0; i < c.length; i++) out[i] += tmp[i];
  }
}

for (const n of [16, 64]) {
  const eps = Array.from({ length: n }, (_, i) => fakeEndpoint(i, { waiting: i % 7, kvUsage: (i % 10) / 10 }));
  const out = new Float64Array(n);
  const tmp = new Float64Array(n);
  const iters = 200_000;
  const b: number[] = [];
  const a: number[] = [];
  for (let round = 0; round < 7; round++) {
    let t = performance.now();
    for (let k = 0; k < iters; k++) run(previous, eps, out, tmp);
    b.push(((performance.now() - t) * 1e6) / iters);
    t = performance.now();
    for (let k = 0; k < iters; k++) run(scorers, eps, out, tmp);
    a.push(((performance.now() - t) * 1e6) / iters);
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[3];
  process.stdout.write(`${n} candidates: previous formulas ${med(b).toFixed(0)} ns, now ${med(a).toFixed(0)} ns per decision (x${(med(a) / med(b)).toFixed(2)})\n`);
}
