/** Renders a {@link DemoSummary} as the readable tables `kvroute demo` prints. */
import type { DemoStrategyResult, DemoSummary } from './demo-summary.js';

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '-');
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : '-');

/** Left-aligns the first column, right-aligns the others. */
export function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [fmt(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(fmt)].join('\n');
}

export function formatDemoReport(s: DemoSummary): string {
  const out: string[] = [];
  out.push(`kvroute demo: ${s.fleet.replicas} simulated vLLM replicas (${s.fleet.profile}, model ${s.fleet.model}), gateway with kvroute's default profile`);
  out.push('Hit rates are deltas of each replica\'s own vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total.');
  for (const p of s.phases) {
    out.push('');
    out.push(`Phase "${p.name}": ${p.description}`);
    out.push(
      table(
        ['replica', 'requests', 'prefix queries', 'prefix hits', 'hit rate'],
        p.replicas.map((r) => [r.endpoint, String(r.requests), String(r.prefixQueries), String(r.prefixHits), pct(r.hitRate)]),
      ),
    );
    out.push(`fleet hit rate ${pct(p.fleetHitRate)}; TTFT of cache hits ${ms(p.hitTtftMs)} (${p.hitRequests}) vs misses ${ms(p.missTtftMs)} (${p.missRequests}); failed ${p.failed}`);
  }
  out.push('');
  const cs = s.comparisonSetup;
  out.push(`Multi-client workload: ${cs.requests} requests over ${cs.groups} shared ~${cs.systemTokens}-token documents at ${cs.ratePerSecond} req/s, fresh caches for each strategy.`);
  out.push(`Run in ${cs.about}.`);
  out.push(
    table(
      ['strategy', 'requests', 'failed', 'fleet hit rate', 'TTFT mean', 'TTFT p50', 'TTFT p90', 'output tok/s', 'busiest replica'],
      s.comparison.map((c) => [c.strategy, String(c.requests), String(c.failed), pct(c.fleetHitRate), ms(c.ttftMeanMs), ms(c.ttftP50Ms), ms(c.ttftP90Ms), c.outputTokensPerSecond.toFixed(0), pct(c.concentration)]),
    ),
  );
  const [a, b] = s.comparison;
  if (a && b) out.push(comparisonLine(a, b));
  out.push(`(demo took ${s.durationSeconds.toFixed(1)} s)`);
  return out.join('\n');
}

/**
 * How much lower or higher `a` is than `b`, worded so it cannot read backwards: "1.85x lower"
 * only when a < b, "1.20x higher" when a > b, "the same" when equal; undefined when either is
 * not a positive finite number.
 */
export function relativeWording(a: number, b: number): string | undefined {
  if (!(Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0)) return undefined;
  if (a < b) return `${(b / a).toFixed(2)}x lower`;
  if (a > b) return `${(a / b).toFixed(2)}x higher`;
  return 'the same';
}

/** The closing line: hit rates side by side, then mean and median TTFT of `a` relative to `b`. */
export function comparisonLine(a: DemoStrategyResult, b: DemoStrategyResult): string {
  const parts = [`hit rate ${pct(a.fleetHitRate)} vs ${pct(b.fleetHitRate)}`];
  const mean = relativeWording(a.ttftMeanMs, b.ttftMeanMs);
  if (mean !== undefined) parts.push(`mean TTFT ${ms(a.ttftMeanMs)} vs ${ms(b.ttftMeanMs)} (${mean})`);
  const p50 = relativeWording(a.ttftP50Ms, b.ttftP50Ms);
  if (p50 !== undefined) parts.push(`median TTFT ${p50}`);
  return `${a.strategy} vs ${b.strategy}: ${parts.join(', ')}`;
}

/** JSON with NaN as null (JSON has no NaN). */
export function demoJson(s: DemoSummary): string {
  return JSON.stringify(s, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
