/**
 * P/D vs aggregated serving at the same GPU count, in simulated time (src/pd/pd-virtual-bench.ts).
 *
 *   node dist/bench/pd-bench.js [--gpus 4] [--workloads long-prompt,mixed,mooncake]
 *     [--requests 300] [--rate long-prompt=6,mixed=8,mooncake=1] [--link rdma|nvlink]
 *     [--slo-ttft-ms 2000] [--slo-tpot-ms 50] [--seed 1] [--json]
 *
 * For 4 GPUs it runs aggregated x4, P/D 1P:3D, 2P:2D, 3P:1D; for 8: aggregated x8, 2:6, 4:4, 6:2.
 * Prints one markdown table per workload.
 */
import { KV_LINKS } from '../src/sim/pd/transfer-model.js';
import { runPdVirtual, type PdBenchResult, type PdFleetShape } from '../src/pd/pd-virtual-bench.js';
import { pdWorkload } from '../src/pd/pd-workloads.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const gpus = Number(arg('gpus', '4'));
const workloads = arg('workloads', 'long-prompt,mixed,mooncake').split(',');
const requests = Number(arg('requests', '300'));
const rates = new Map(arg('rate', 'long-prompt=6,mixed=8,mooncake=1').split(',').map((kv) => kv.split('=') as [string, string]));
const link = arg('link', 'rdma') as keyof typeof KV_LINKS;
const seed = Number(arg('seed', '1'));
const sloTtftMs = Number(arg('slo-ttft-ms', '2000'));
const sloTpotMs = Number(arg('slo-tpot-ms', '50'));
const json = process.argv.includes('--json');
if (KV_LINKS[link] === undefined) throw new Error(`--link must be ${Object.keys(KV_LINKS).join(' or ')}`);
const shapes: PdFleetShape[] = [{ prefill: 0, decode: gpus }];
for (const p of gpus === 8 ? [2, 4, 6] : [1, 2, 3]) shapes.push({ prefill: p, decode: gpus - p });

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
const all: { workload: string; rate: number; results: PdBenchResult[] }[] = [];
for (const name of workloads) {
  const rate = Number(rates.get(name) ?? '4');
  const w = pdWorkload(name, { requests, rate, seed, model: 'meta-llama/Llama-3.1-8B-Instruct' });
  const results: PdBenchResult[] = [];
  for (const s of shapes) results.push(await runPdVirtual(w, s, { profile: 'llama-3.1-8b', link: KV_LINKS[link], seed, sloTtftMs, sloTpotMs }));
  all.push({ workload: name, rate, results });
  if (json) continue;
  process.stdout.write(`\n### ${w.description} (${gpus} GPUs, ${link}, SLO TTFT <= ${sloTtftMs} ms, TPOT <= ${sloTpotMs} ms)\n\n`);
  process.stdout.write('| serving | TTFT p50 / p90 / p99 (ms) | ITL p90 / p99 (ms) | TPOT p90 (ms) | goodput (req/s) | SLO met | output tok/s | disaggregated | pins left |\n|---|---|---|---|---|---|---|---|---|\n');
  for (const r of results) {
    process.stdout.write(`| ${r.label} | ${f(r.ttft.p50)} / ${f(r.ttft.p90)} / ${f(r.ttft.p99)} | ${f(r.itl.p90, 1)} / ${f(r.itl.p99, 1)} | ${f(r.tpot.p90, 1)} | ${f(r.goodputRps, 2)} | ${f(r.sloAttainment * 100)}% | ${f(r.outputTokS)} | ${r.disaggregated}/${r.requests} | ${r.pinsLeft} |\n`);
  }
}
if (json) process.stdout.write(JSON.stringify({ gpus, link, seed, sloTtftMs, sloTpotMs, requests, runs: all }, null, 2) + '\n');
