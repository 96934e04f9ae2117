/**
 * Seed sweep: runs `kvroute bench` (virtual engine) once per seed and reports, per strategy, the
 * mean of the main figures and the PAIRED difference in output throughput against a baseline
 * strategy (mean, standard deviation and standard error over seeds, and how many seeds it won).
 *
 * Why: on an open-loop workload, output tokens/s = output tokens / (last completion - first
 * arrival), so it hinges on the last replica to drain, and one seed's figure moves by up to 10 %
 * with the arrival draw. Strategies that route alike differ by ~1 %, less than that noise; only a
 * paired comparison over many seeds separates them.
 *
 *   npm run build && node dist/bench/seed-sweep.js --workload shared-prefix --preset llm-d-precise
 *       --replicas 8 --seeds 1-22 [--strategies sglang,kvroute] [--baseline sglang]
 *       [--config file.yaml ...] [--json]
 */
import { parseArgs } from 'node:util';
import { runBench, type StrategyReport } from '../src/bench/run-bench.js';
import { KvrError } from '../src/core/errors.js';
import type { WorkloadOptions } from '../src/bench/workloads.js';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'shared-prefix' },
    preset: { type: 'string' },
    replicas: { type: 'string', default: '8' },
    seeds: { type: 'string', default: '1-8' },
    strategies: { type: 'string', default: 'llm-d-precise,sglang,kvroute' },
    baseline: { type: 'string', default: 'sglang' },
    config: { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});

/** "1-5,9" -> [1, 2, 3, 4, 5, 9]. */
function parseSeeds(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new KvrError('KVR_ERR_USAGE', `--seeds: "${part}" is not a seed or a range like 1-8`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

const seeds = parseSeeds(values.seeds!);
const strategies = values.strategies!.split(',').map((s) => s.trim()).filter(Boolean);
const workloadOptions: WorkloadOptions = values.preset ? { preset: values.preset } : {};
const runs = new Map<string, StrategyReport[]>();
for (const seed of seeds) {
  const r = await runBench({ workload: values.workload!, workloadOptions, strategies, configs: values.config!, engine: 'virtual', replicas: Number(values.replicas), seed });
  for (const s of r.strategies) runs.set(s.name, [...(runs.get(s.name) ?? []), s]);
  process.stderr.write(`seed ${seed} done\n`);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
};
const base = runs.get(values.baseline!);
const rows = [...runs.entries()].map(([name, rs]) => {
  const diffs = base ? rs.map((r, i) => 100 * (r.outputTokensPerSecond / base[i].outputTokensPerSecond - 1)) : [];
  return {
    name,
    seeds: rs.length,
    outputTokensPerSecond: mean(rs.map((r) => r.outputTokensPerSecond)),
    ttftP90Ms: mean(rs.map((r) => r.ttftMs.p90 ?? 0)),
    vsOracle: mean(rs.map((r) => r.vsOracle ?? 0)),
    balance: mean(rs.map((r) => r.balance ?? 0)),
    throughputVsBaselinePct: base ? { mean: mean(diffs), sd: sd(diffs), se: sd(diffs) / Math.sqrt(diffs.length), wins: diffs.filter((d) => d > 0).length } : undefined,
  };
});
if (values.json) {
  process.stdout.write(JSON.stringify({ workload: values.workload, preset: values.preset, replicas: Number(values.replicas), seeds, baseline: values.baseline, rows }, null, 2) + '\n');
} else {
  console.log(`${values.workload}${values.preset ? ` ${values.preset}` : ''}, ${values.replicas} replicas, seeds ${values.seeds} (${seeds.length}); paired throughput difference vs ${values.baseline}`);
  console.log('strategy          out tok/s  TTFT p90  vs bound  balance  vs baseline (mean ± se, sd)   wins');
  for (const r of rows.sort((a, b) => b.outputTokensPerSecond - a.outputTokensPerSecond)) {
    const d = r.throughputVsBaselinePct;
    console.log(
      `${r.name.padEnd(16)}  ${r.outputTokensPerSecond.toFixed(0).padStart(9)}  ${r.ttftP90Ms.toFixed(0).padStart(5)} ms  ${(100 * r.vsOracle).toFixed(1).padStart(6)} %  ${r.balance.toFixed(3).padStart(7)}  ` +
        (d ? `${d.mean >= 0 ? '+' : ''}${d.mean.toFixed(2)} % ± ${d.se.toFixed(2)} (sd ${d.sd.toFixed(2)})`.padEnd(29) + `  ${d.wins}/${r.seeds}` : ''),
    );
  }
}
