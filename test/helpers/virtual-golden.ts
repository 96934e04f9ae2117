/**
 * Small virtual-bench runs whose complete reports must not change when the virtual engine is made
 * faster (src/bench/virtual-golden.test.ts). They cover what a speed-up could break: prefix hits
 * and evictions (small KV capacity), preemption (a batch that overflows the cache), KV events
 * into the precise index (kvroute, llm-d-precise), approximate routing, barriers and phases
 * (seeds' tests), a trace, chat prompts, and the closed loop.
 *
 * `golden(runBench)` takes the runBench to use, so the fixture can be produced by an older build
 * (bench/virtual-golden-gen.ts) and compared with the current one.
 */
import type { BenchOptions, BenchReport } from '../../src/bench/run-bench.js';

/** The cases: name -> bench options. */
export const GOLDEN_CASES: Record<string, BenchOptions> = {
  'shared-prefix-evicting': {
    workload: 'shared-prefix', engine: 'virtual', replicas: 4, seed: 3, gpuBlocks: 600, strategies: ['kvroute', 'llm-d-precise', 'llm-d-approx', 'round-robin'],
    workloadOptions: { groups: 12, promptsPerGroup: 6, systemTokens: 700, questionTokens: 90, outputTokens: 40, requests: 160, rate: [6, 30] },
  },
  'preempting-closed-loop': {
    workload: 'shared-prefix', engine: 'virtual', replicas: 3, seed: 5, gpuBlocks: 160, maxNumSeqs: 12, strategies: ['kvroute', 'least-loaded'], closedLoopUsers: 24,
    workloadOptions: { groups: 5, promptsPerGroup: 8, systemTokens: 300, questionTokens: 120, outputTokens: 80, requests: 90, rate: 40 },
  },
  'chat-and-seeds': {
    workload: 'multi-turn-chat', engine: 'virtual', replicas: 4, seed: 2, gpuBlocks: 900, strategies: ['kvroute', 'sglang', 'client-ip'],
    workloadOptions: { users: 10, turns: 4, requests: 40 },
  },
  'seeds-cache-hit': { workload: 'seeds-cache-hit', engine: 'virtual', replicas: 3, seed: 1, strategies: ['kvroute', 'random'] },
  'mooncake-trace': {
    workload: 'trace', engine: 'virtual', replicas: 4, seed: 1, gpuBlocks: 3000, strategies: ['kvroute', 'llm-d-approx'],
    workloadOptions: { requests: 60, trace: { rateScale: 4 } },
  },
};

/** Runs every case; the reports without the wall-clock field (the only one that varies) and with config file names only. */
export async function golden(runBench: (o: BenchOptions) => Promise<BenchReport>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(GOLDEN_CASES)) {
    const r = await runBench(o);
    // Strategy sources are config file paths: only their names are compared (no machine path).
    const strategies = r.strategies.map((s) => ({ ...s, source: s.source.replace(/^.*[\\/]/, '') }));
    out[name] = JSON.parse(JSON.stringify({ ...r, strategies, wallSeconds: 0 }));
  }
  return out;
}
