/**
 * Seed sweep: a paired multi-seed comparison of routing strategies, the same as
 * `kvroute bench --seeds` (src/bench/paired.ts): every strategy runs on the same seeds, and per
 * figure (hit rate, TTFT p90/p99, goodput, balance, saturation throughput with --closed-loop) the
 * per-seed difference against the baseline gets its mean and 95 % Student-t interval; "better" /
 * "worse" only where the interval excludes 0.
 *
 * Why paired: one seed's figures move with the arrival draw by more than strategies that route
 * alike differ; only differences on the same seeds separate them.
 *
 *   npm run build && node dist/bench/seed-sweep.js --workload shared-prefix --preset llm-d-precise
 *       --replicas 8 --seeds 1-10 [--strategies sglang,kvroute] [--baseline sglang]
 *       [--config file.yaml ...] [--closed-loop 128] [--rate 8] [--users 256] [--json]
 */
import { parseArgs } from 'node:util';
import { runBenchCommand } from '../src/bench/bench-command.js';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'shared-prefix' },
    preset: { type: 'string' },
    replicas: { type: 'string', default: '8' },
    seeds: { type: 'string', default: '1-10' },
    strategies: { type: 'string', default: 'llm-d-precise,sglang-idealised,kvroute' },
    baseline: { type: 'string', default: 'sglang-idealised' },
    config: { type: 'string', multiple: true, default: [] },
    'closed-loop': { type: 'string' },
    rate: { type: 'string' },
    users: { type: 'string' },
    requests: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
await runBenchCommand(
  {
    workload: values.workload!,
    ...(values.preset !== undefined ? { preset: values.preset } : {}),
    strategies: values.strategies!,
    config: values.config!,
    engine: 'virtual',
    replicas: Number(values.replicas),
    seed: 1,
    seeds: values.seeds!,
    baseline: values.baseline!,
    profile: 'llama-3.1-8b',
    json: values.json!,
    ...(values['closed-loop'] !== undefined ? { closedLoop: num(values['closed-loop']) } : {}),
    ...(values.rate !== undefined ? { rate: values.rate } : {}),
    ...(values.users !== undefined ? { users: num(values.users) } : {}),
    ...(values.requests !== undefined ? { requests: num(values.requests) } : {}),
  },
  process.stdout,
  process.stderr,
);
