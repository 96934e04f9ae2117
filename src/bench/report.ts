/**
 * Terminal and JSON renderings of a {@link BenchReport}, and the progress bar (stderr, TTY only).
 */
import type { BenchReport, StrategyReport } from './run-bench.js';

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

/** Milliseconds as `12 ms` / `1.23 s`; `-` for null. */
export function fmtMs(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

function table(head: string[], rows: string[][], rightFrom = 1): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= rightFrom ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function strategyRow(s: StrategyReport): string[] {
  return [
    s.name,
    String(s.requests),
    String(s.failed),
    pct(s.hitRate),
    pct(s.vsOracle),
    pct(s.vsOpt),
    fmtMs(s.ttftMs.p50),
    fmtMs(s.ttftMs.p90),
    fmtMs(s.ttftMs.p99),
    fmtMs(s.itlMs.mean),
    fmtMs(s.e2eMs.p90),
    s.goodput.requestsPerSecond.toFixed(2),
    pct(s.goodput.share),
    s.balance.toFixed(2),
    pct(s.stickiness),
    pct(s.concentration),
  ];
}

/** The terminal report; `details` adds per-replica tables. */
export function formatBenchReport(r: BenchReport, details = false): string {
  const out: string[] = [];
  const f = r.fleet;
  out.push(`kvroute bench: ${r.workload.description}`);
  out.push(
    `engine ${r.engine}${f.timeScale !== null ? ` (time scale ${f.timeScale})` : ''}, ${f.replicas} replicas${f.endpoints ? ` (${f.endpoints.join(', ')})` : ` (simulated ${f.profile})`}, ` +
      `KV capacity ${f.numGpuBlocksPerReplica.toLocaleString('en-US')} blocks of ${f.blockSize} per replica = ${f.capacityTokens.toLocaleString('en-US')} tokens in the fleet, seed ${r.seed}`,
  );
  out.push(`pooled cache of ${r.oracle.capacityBlocks.toLocaleString('en-US')} blocks: LRU reference ${pct(r.oracle.hitRate)}, OPT (Belady) upper bound ${pct(r.oracle.optHitRate)}`);
  out.push('');
  out.push(
    table(
      ['strategy', 'requests', 'failed', 'hit rate', 'vs LRU ref', 'vs OPT', 'TTFT p50', 'TTFT p90', 'TTFT p99', 'ITL mean', 'E2E p90', 'goodput/s', 'met SLO', 'balance', 'stickiness', 'concentration'],
      r.strategies.map(strategyRow),
    ),
  );
  for (const s of r.skipped) out.push(`${s.name}: skipped (${s.reason})`);
  const slo = r.strategies[0]?.goodput.slo;
  if (slo !== undefined) out.push(`goodput = requests/s meeting TTFT <= ${slo.ttftMs} ms and TPOT <= ${slo.tpotMs} ms (open loop; saturation throughput: --closed-loop); one seed declares no winner (use --seeds for a paired comparison)`);
  const sat = r.strategies.filter((s) => s.saturation !== undefined);
  if (sat.length > 0) {
    out.push('');
    out.push(`saturation throughput (closed loop: ${sat[0].saturation!.users} clients, no think time, the workload's requests in order):`);
    out.push(table(['strategy', 'out tok/s', 'req/s', 'hit rate', 'TTFT mean', 'failed'], sat.map((s) => { const x = s.saturation!; return [s.name, x.outputTokensPerSecond.toFixed(0), x.requestsPerSecond.toFixed(2), pct(x.hitRate), fmtMs(x.ttftMeanMs), String(x.failed)]; })));
  }
  const basis = r.strategies[0]?.balanceBasis;
  if (basis !== undefined) out.push(`balance = max / mean over replicas of ${basis === 'busy-time' ? 'engine busy time' : 'prefill tokens computed'}; hit rate = delta prefix_cache_hits / queries (tokens), fleet-wide`);
  const multiPhase = r.strategies.some((s) => s.phases.length > 1);
  if (multiPhase) {
    out.push('');
    out.push('hit rate by phase:');
    const names = r.strategies[0].phases.map((p) => p.name);
    out.push(table(['strategy', ...names], r.strategies.map((s) => [s.name, ...names.map((n) => { const p = s.phases.find((x) => x.name === n); return p ? `${pct(p.hitRate)} (${p.requests})` : '-'; })])));
  }
  if (r.workload.name === 'seeds-cache-hit') {
    out.push('');
    out.push("seeds' cache-hit test (restart, warm-up, measured loop):");
    out.push(table(['strategy', 'aggregate delta hit rate', 'overall pod hit rate', 'primary pod', 'stickiness verdict'], r.strategies.map((s) => [s.name, pct(s.seeds.aggregateDeltaHitRate), pct(s.seeds.overallPodHitRate), s.seeds.primaryReplica, s.seeds.stickinessVerdict]), 1));
  }
  for (const s of r.strategies) {
    const extra = [...s.notes, ...s.errors.map((e) => `error: ${e}`)];
    if (extra.length > 0) out.push(`${s.name}: ${extra.join('; ')}`);
  }
  if (details) {
    for (const s of r.strategies) {
      out.push('');
      out.push(`${s.name} per replica:`);
      out.push(table(['replica', 'requests', 'prompt tokens', 'prefill tokens', 'hit rate', 'busy'], s.replicas.map((x) => [x.name, String(x.requests), String(x.promptTokens), String(x.prefillTokens), pct(x.hitRate), fmtMs(x.busyMs)])));
    }
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push(`(bench took ${r.wallSeconds.toFixed(1)} s)`);
  return out.join('\n');
}

/** The `--json` document. */
export function benchJson(r: BenchReport): string {
  return JSON.stringify(r, null, 2);
}

/** A one-line progress bar on a TTY stream (redrawn in place); returns the update function. */
export function progressBar(stream: NodeJS.WriteStream): ((p: { strategy: string; index: number; of: number; done: number; total: number }) => void) & { end(): void } {
  const enabled = stream.isTTY === true;
  let last = 0;
  const fn = ((p: { strategy: string; index: number; of: number; done: number; total: number }) => {
    if (!enabled) return;
    const now = Date.now();
    if (p.done !== p.total && now - last < 100) return;
    last = now;
    const width = 30;
    const fill = Math.round((p.done / Math.max(1, p.total)) * width);
    stream.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.strategy} (${p.index + 1}/${p.of}) ${p.done}/${p.total}\x1b[K`);
  }) as ((p: { strategy: string; index: number; of: number; done: number; total: number }) => void) & { end(): void };
  fn.end = () => {
    if (enabled) stream.write('\r\x1b[K');
  };
  return fn;
}
