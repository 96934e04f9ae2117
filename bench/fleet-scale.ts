/**
 * The virtual bench at fleet scale: one strategy (default: kvroute's default profile, precise
 * routing from the engines' KV events) over `--replicas` simulated engines and `--requests`
 * requests of the lazily generated fleet workload (src/bench/fleet-workload.ts), in simulated
 * time, in this one process. Prints what it cost: wall time, CPU time, peak RSS, CPU per request,
 * and the run's figures (so a fast run is also a correct one).
 *
 *   npm run bench:fleet-scale -- --replicas 16 --requests 100000
 *   node dist/bench/fleet-scale.js --replicas 1000 --requests 1000000 --gpu-blocks 8192 [--json]
 *
 * Flags: --replicas, --requests, --strategy (a bench strategy name), --gpu-blocks (KV blocks per
 * replica; default the profile's 54,320), --groups-per-replica, --system-tokens,
 * --question-tokens, --output-tokens, --rate-per-replica, --seed, --progress (a line to stderr
 * every 10 %), --json. No oracle or OPT pass (`kvroute bench` adds those).
 */
import { parseArgs } from 'node:util';
import { computeFigures } from '../src/bench/figures.js';
import { fleetWorkload } from '../src/bench/fleet-workload.js';
import { defaultPreciseSetup } from '../src/bench/precise-setup.js';
import { builtinStrategy } from '../src/bench/strategies.js';
import { boundHeapGrowth } from '../src/bench/virtual-fleet.js';
import { runVirtual } from '../src/bench/virtual-runner.js';

boundHeapGrowth();
const { values: v } = parseArgs({
  options: {
    replicas: { type: 'string', default: '16' },
    requests: { type: 'string', default: '100000' },
    strategy: { type: 'string', default: 'kvroute' },
    'gpu-blocks': { type: 'string' },
    'groups-per-replica': { type: 'string' },
    'system-tokens': { type: 'string' },
    'question-tokens': { type: 'string' },
    'output-tokens': { type: 'string' },
    'rate-per-replica': { type: 'string' },
    seed: { type: 'string', default: '1' },
    progress: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));
const replicas = num(v.replicas)!;
const seed = num(v.seed)!;
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer; got ${v.seed}`);
const workload = fleetWorkload({
  requests: num(v.requests)!,
  replicas,
  seed,
  ...(v['groups-per-replica'] !== undefined ? { groupsPerReplica: num(v['groups-per-replica'])! } : {}),
  ...(v['system-tokens'] !== undefined ? { systemTokens: num(v['system-tokens'])! } : {}),
  ...(v['question-tokens'] !== undefined ? { questionTokens: num(v['question-tokens'])! } : {}),
  ...(v['output-tokens'] !== undefined ? { outputTokens: num(v['output-tokens'])! } : {}),
  ...(v['rate-per-replica'] !== undefined ? { ratePerReplica: num(v['rate-per-replica'])! } : {}),
});
const gpuBlocks = num(v['gpu-blocks']);
const strategy = builtinStrategy(v.strategy!);

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let nextMark = 0.1;
const res = await runVirtual(
  workload,
  strategy,
  { replicas, profile: 'llama-3.1-8b', blockSize: 16, seed, ...(gpuBlocks !== undefined ? { numGpuBlocks: gpuBlocks } : {}) },
  {
    precise: defaultPreciseSetup,
    onProgress: (done, total) => {
      if (!v.progress || done < total * nextMark) return;
      nextMark += 0.1;
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`${done}/${total} requests, ${s.toFixed(0)} s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB\n`);
    },
  },
);
const wallS = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
if ('skipped' in res) throw new Error(`strategy ${strategy.name} skipped: ${res.skipped}`);
const f = computeFigures(res.run, 0);
const cpuS = (cpu.user + cpu.system) / 1e6;
const out = {
  workload: workload.description,
  strategy: strategy.name,
  replicas,
  requests: workload.requests.length,
  gpuBlocksPerReplica: gpuBlocks ?? 'profile default (54,320)',
  wallSeconds: Number(wallS.toFixed(1)),
  cpuSeconds: Number(cpuS.toFixed(1)),
  cpuMicrosecondsPerRequest: Math.round((cpuS * 1e6) / workload.requests.length),
  peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  figures: {
    failed: f.failed,
    hitRate: Number(f.hitRate.toFixed(4)),
    ttftP50Ms: f.ttftMs.p50,
    ttftP90Ms: f.ttftMs.p90,
    balance: Number(f.balance.toFixed(3)),
    outputTokensPerSecond: Math.round(f.outputTokensPerSecond),
    simulatedSeconds: Number(f.durationS.toFixed(1)),
  },
};
if (v.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
else {
  process.stdout.write(`${out.workload}\n`);
  process.stdout.write(`${strategy.name} on ${replicas} virtual replicas: ${out.requests} requests in ${out.wallSeconds} s wall, ${out.cpuSeconds} s CPU (${out.cpuMicrosecondsPerRequest} us per request), peak RSS ${out.peakRssMiB} MiB\n`);
  const g = out.figures;
  process.stdout.write(`failed ${g.failed}, hit rate ${(g.hitRate * 100).toFixed(1)} %, TTFT p50 ${g.ttftP50Ms?.toFixed(1)} ms p90 ${g.ttftP90Ms?.toFixed(1)} ms, balance ${g.balance}, ${g.outputTokensPerSecond} output tok/s over ${g.simulatedSeconds} simulated s\n`);
}
