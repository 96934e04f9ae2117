/**
 * Paired multi-seed comparison, the way `kvroute bench --seeds` declares a winner: every strategy
 * runs on the same seeds (same arrivals, prompts and tie-break streams), the per-seed difference
 * against a baseline strategy is taken, and its mean gets a two-sided 95 % Student-t interval
 * (n - 1 degrees of freedom). A strategy is "better" or "worse" on a figure only when the interval
 * excludes 0; otherwise "not separated". One seed gives no interval and so no verdict.
 *
 * Figures: hit rate (difference in points), TTFT p90 and goodput (relative difference, %),
 * balance (difference), saturation output tokens/s (relative, %, when closed-loop ran).
 */
import type { BenchReport, StrategyReport } from './run-bench.js';

/** Two-sided 95 % Student-t quantile for `df` degrees of freedom (df >= 1). */
export function t975(df: number): number {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  if (df < 1) return Infinity;
  if (df <= 30) return table[df - 1];
  return 1.96 + 2.4 / df; // within 0.2 % of the t quantile beyond 30
}

/** Mean and 95 % interval of paired differences. */
export interface PairedInterval {
  n: number;
  mean: number;
  lo: number;
  hi: number;
}

/** Mean and 95 % t-interval of `xs` (the per-seed differences). */
export function pairedInterval(xs: readonly number[]): PairedInterval {
  const n = xs.length;
  const mean = n > 0 ? xs.reduce((a, b) => a + b, 0) / n : 0;
  if (n < 2) return { n, mean, lo: -Infinity, hi: Infinity };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const h = t975(n - 1) * (sd / Math.sqrt(n));
  return { n, mean, lo: mean - h, hi: mean + h };
}

/** A figure compared across seeds. */
interface Figure {
  name: string;
  unit: 'pts' | '%' | '';
  higherIsBetter: boolean;
  value(s: StrategyReport): number | undefined;
}

const rel = (a: number, b: number) => (b !== 0 ? 100 * (a / b - 1) : 0);
const FIGURES: Figure[] = [
  { name: 'hit rate', unit: 'pts', higherIsBetter: true, value: (s) => 100 * s.hitRate },
  { name: 'TTFT p90', unit: '%', higherIsBetter: false, value: (s) => s.ttftMs.p90 ?? undefined },
  { name: 'TTFT p99', unit: '%', higherIsBetter: false, value: (s) => s.ttftMs.p99 ?? undefined },
  { name: 'goodput', unit: '%', higherIsBetter: true, value: (s) => s.goodput.requestsPerSecond },
  { name: 'balance', unit: '', higherIsBetter: false, value: (s) => s.balance },
  { name: 'saturation tok/s', unit: '%', higherIsBetter: true, value: (s) => s.saturation?.outputTokensPerSecond },
];

/** One strategy's paired result on one figure. */
export interface PairedResult {
  strategy: string;
  figure: string;
  unit: string;
  /** Mean of the strategy's figure over seeds. */
  mean: number;
  /** Paired difference against the baseline (pts / % / absolute), with its 95 % interval. */
  diff: PairedInterval;
  verdict: 'better' | 'worse' | 'not separated' | 'one seed: no verdict' | 'baseline';
}

/** Compares every strategy of `reports` (one report per seed, same strategies) with `baseline`. */
export function comparePaired(reports: readonly BenchReport[], baseline: string): PairedResult[] {
  if (reports.length === 0) return [];
  const names = reports[0].strategies.map((s) => s.name);
  if (!names.includes(baseline)) throw new RangeError(`baseline strategy "${baseline}" is not among ${names.join(', ')}`);
  const out: PairedResult[] = [];
  for (const f of FIGURES) {
    const vals = reports.map((r) => r.strategies.find((x) => x.name === baseline)).map((b) => (b ? f.value(b) : undefined)).filter((v): v is number => v !== undefined);
    if (vals.length > 0) out.push({ strategy: baseline, figure: f.name, unit: f.unit, mean: vals.reduce((a, b) => a + b, 0) / vals.length, diff: { n: vals.length, mean: 0, lo: 0, hi: 0 }, verdict: 'baseline' });
  }
  for (const name of names) {
    if (name === baseline) continue;
    for (const f of FIGURES) {
      const diffs: number[] = [];
      const vals: number[] = [];
      for (const r of reports) {
        const s = r.strategies.find((x) => x.name === name);
        const b = r.strategies.find((x) => x.name === baseline);
        const v = s && f.value(s);
        const bv = b && f.value(b);
        if (v === undefined || bv === undefined) continue;
        vals.push(v);
        diffs.push(f.unit === '%' ? rel(v, bv) : v - bv);
      }
      if (diffs.length === 0) continue;
      const diff = pairedInterval(diffs);
      const better = f.higherIsBetter ? diff.lo > 0 : diff.hi < 0;
      const worse = f.higherIsBetter ? diff.hi < 0 : diff.lo > 0;
      out.push({
        strategy: name,
        figure: f.name,
        unit: f.unit,
        mean: vals.reduce((a, b) => a + b, 0) / vals.length,
        diff,
        verdict: diff.n < 2 ? 'one seed: no verdict' : better ? 'better' : worse ? 'worse' : 'not separated',
      });
    }
  }
  return out;
}

/** The paired table as text. */
export function formatPaired(results: readonly PairedResult[], baseline: string, seeds: readonly number[]): string {
  const lines = [`paired comparison against ${baseline} over ${seeds.length} seeds (${seeds.join(',')}): mean difference [95 % interval]; a verdict only where the interval excludes 0`];
  const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2)) : '-');
  const rows = results.map((r) => [r.strategy, r.figure, fmt(r.mean), r.verdict === 'baseline' ? '' : `${r.diff.mean >= 0 ? '+' : ''}${fmt(r.diff.mean)} ${r.unit} [${fmt(r.diff.lo)}, ${fmt(r.diff.hi)}]`, r.verdict]);
  const head = ['strategy', 'figure', 'mean', `vs ${baseline}`, 'verdict'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  lines.push(head.map((h, i) => h.padEnd(w[i])).join('  '));
  lines.push(w.map((x) => '-'.repeat(x)).join('  '));
  for (const r of rows) lines.push(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd());
  return lines.join('\n');
}
