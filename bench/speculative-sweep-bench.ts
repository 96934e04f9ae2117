/**
 * Cost of expiring the precise scorer's speculative entries: the previous full scan (every
 * entry of every endpoint, about once a second, kept here as the baseline) against
 * {@link SpeculativeBlocks}' expiry FIFOs, in the same run.
 *
 * Workload, like a busy router: 4 endpoints, `--rate` picks per second of `--blocks` keys each
 * (a 30 s lifetime, so ~rate x 30 x blocks entries held), 20 % of the picks shortened to a 2 s
 * grace at their first token; the clock is simulated (1 ms steps), a sweep every 1,000 ms as in
 * the scorer. Reports the time spent in sweeps per simulated second, the longest single sweep
 * once the entries reached steady state, and the ratios.
 *
 *   npm run build --silent && node dist/bench/speculative-sweep-bench.js [--rate 200] [--blocks 64] [--seconds 60]
 */
import { performance } from 'node:perf_hooks';
import { randInt, seededRng } from '../src/core/rng.js';
import type { BlockKey } from '../src/scheduling/kv-cache-services.js';
import { SpeculativeBlocks } from '../src/scheduling/scorers/speculative-blocks.js';

/** The previous implementation's expiry: a scan of every entry. */
class ScanBaseline {
  readonly #byEndpoint = new Map<string, Map<BlockKey, number>>();
  size = 0;
  constructor(readonly maxPerEndpoint: number) {}
  set(endpointId: string, keys: ArrayLike<BlockKey>, until: number, lowerOnly: boolean): void {
    let m = this.#byEndpoint.get(endpointId);
    if (m === undefined) {
      if (lowerOnly) return;
      m = new Map();
      this.#byEndpoint.set(endpointId, m);
    }
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      const cur = m.get(k);
      if (lowerOnly) {
        if (cur !== undefined && until < cur) m.set(k, until);
        continue;
      }
      if (cur !== undefined) m.delete(k);
      else this.size++;
      m.set(k, until);
    }
    while (m.size > this.maxPerEndpoint) {
      m.delete(m.keys().next().value as BlockKey);
      this.size--;
    }
  }
  sweep(now: number): void {
    for (const [id, m] of this.#byEndpoint) {
      for (const [k, exp] of m) {
        if (exp > now) continue;
        m.delete(k);
        this.size--;
      }
      if (m.size === 0) this.#byEndpoint.delete(id);
    }
  }
}

interface Impl { size: number; set(ep: string, keys: ArrayLike<BlockKey>, until: number, lowerOnly: boolean): void; sweep(now: number): void }

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function run(impl: Impl, rate: number, blocks: number, seconds: number): { sweepMsPerSec: number; setMsPerSec: number; maxSweepMs: number; held: number } {
  const rng = seededRng(7);
  let sweepMs = 0;
  let maxSweepMs = 0;
  let setMs = 0;
  const pending: { at: number; ep: string; keys: number[] }[] = [];
  let next = 0;
  for (let now = 0; now < seconds * 1000; now++) {
    // Picks due this ms: Poisson-free, evenly spread at `rate` per second.
    while (next <= now) {
      next += 1000 / rate;
      const ep = `ep${randInt(rng, 4)}`;
      // Prompts share prefixes: 1 of 200 roots, then request-specific blocks.
      const root = randInt(rng, 200) * 1_000_000;
      const keys = Array.from({ length: blocks }, (_, i) => (i < blocks / 2 ? root + i : root + 500_000 + randInt(rng, 1e9)));
      const t = performance.now();
      impl.set(ep, keys, now + 30_000, false);
      setMs += performance.now() - t;
      if (randInt(rng, 5) === 0) pending.push({ at: now + 300, ep, keys });
    }
    while (pending.length > 0 && pending[0].at <= now) {
      const p = pending.shift()!;
      const t = performance.now();
      impl.set(p.ep, p.keys, now + 2_000, true);
      setMs += performance.now() - t;
    }
    if (now % 1000 === 0) {
      const t = performance.now();
      impl.sweep(now);
      const d = performance.now() - t;
      sweepMs += d;
      if (now > 30_000) maxSweepMs = Math.max(maxSweepMs, d);
    }
  }
  return { sweepMsPerSec: sweepMs / seconds, setMsPerSec: setMs / seconds, maxSweepMs, held: impl.size };
}

const rate = arg('--rate', 200);
const blocks = arg('--blocks', 64);
const seconds = arg('--seconds', 60);
console.log(`speculative-sweep-bench: node ${process.version}; ${rate} picks/s x ${blocks} blocks, ${seconds} simulated s, 4 endpoints`);
const rows: Record<string, { sweepMsPerSec: number; setMsPerSec: number; maxSweepMs: number; held: number }[]> = { scan: [], fifo: [] };
for (let round = 0; round < 3; round++) {
  rows.scan.push(run(new ScanBaseline(200_000), rate, blocks, seconds));
  rows.fifo.push(run(new SpeculativeBlocks(200_000), rate, blocks, seconds));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, r] of Object.entries(rows)) {
  console.log(`${name.padEnd(5)} sweep ${med(r.map((x) => x.sweepMsPerSec)).toFixed(2)} ms per s, longest (steady state) ${med(r.map((x) => x.maxSweepMs)).toFixed(2)} ms  set ${med(r.map((x) => x.setMsPerSec)).toFixed(2)} ms per s  entries held at the end ${r[0].held.toLocaleString('en-US')}`);
}
const ratio = med(rows.fifo.map((x) => x.sweepMsPerSec)) / med(rows.scan.map((x) => x.sweepMsPerSec));
const setRatio = med(rows.fifo.map((x) => x.setMsPerSec)) / med(rows.scan.map((x) => x.setMsPerSec));
console.log(`sweep time fifo/scan ${ratio.toFixed(3)}; set time fifo/scan ${setRatio.toFixed(2)} (medians of 3 rounds)`);
