/** Renders a {@link DemoSummary} as the readable tables `kvroute demo` prints. */
import type { DemoSummary } from './demo-summary.js';

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
  out.push('Multi-client workload (same requests, fresh caches each run):');
  out.push(
    table(
      ['strategy', 'requests', 'failed', 'fleet hit rate', 'TTFT mean', 'TTFT p50', 'TTFT p90', 'output tok/s', 'busiest replica'],
      s.comparison.map((c) => [c.strategy, String(c.requests), String(c.failed), pct(c.fleetHitRate), ms(c.ttftMeanMs), ms(c.ttftP50Ms), ms(c.ttftP90Ms), c.outputTokensPerSecond.toFixed(0), pct(c.concentration)]),
    ),
  );
  const [a, b] = s.comparison;
  if (a && b && Number.isFinite(a.ttftMeanMs) && Number.isFinite(b.ttftMeanMs)) {
    out.push(`${a.strategy} vs ${b.strategy}: hit rate ${pct(a.fleetHitRate)} vs ${pct(b.fleetHitRate)}, mean TTFT ${(b.ttftMeanMs / a.ttftMeanMs).toFixed(2)}x lower`);
  }
  out.push(`(demo took ${s.durationSeconds.toFixed(1)} s)`);
  return out.join('\n');
}

/** JSON with NaN as null (JSON has no NaN). */
export function demoJson(s: DemoSummary): string {
  return JSON.stringify(s, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}
