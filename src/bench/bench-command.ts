/**
 * Glue between the `kvroute bench` flags and {@link runBench}: maps parsed flag values onto
 * BenchOptions, shows the progress bar on a TTY, writes the outputs. The CLI only parses.
 */
import { writeFileSync } from 'node:fs';
import { KvrError } from '../core/errors.js';
import type { ProfileId } from '../sim/profiles.js';
import { renderHtmlReport } from './html-report.js';
import { formatBenchReport, progressBar } from './report.js';
import { runBench, type BenchOptions, type BenchReport } from './run-bench.js';
import { DEFAULT_SLO } from './figures.js';
import { comparePaired, formatPaired } from './paired.js';
import { withEventFaults } from './event-faults.js';
import { defaultPreciseSetup } from './precise-setup.js';
import { getProfile } from '../sim/profiles.js';
import { STRATEGY_NAMES } from './strategies.js';
import { boundHeapGrowth } from './virtual-fleet.js';
import { runBenchCommandInWorker } from './bench-thread.js';

/** Flag values of `kvroute bench` (commander's camelCase names). */
export interface BenchCliOptions {
  workload: string;
  preset?: string;
  strategies?: string;
  config?: string[];
  engine: string;
  endpoints?: string;
  gatewayUrl?: string;
  /** Live engine: kvroute's gateway as its own `kvroute serve` process. */
  gatewayProcess?: boolean;
  replicas: number;
  requests?: number;
  rate?: string;
  seed: number;
  json?: boolean;
  html?: string;
  details?: boolean;
  gpuBlocks?: number;
  blockSize?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  profile: string;
  timeScale?: number;
  model?: string;
  groups?: number;
  promptsPerGroup?: number;
  systemTokens?: number;
  questionTokens?: number;
  outputTokens?: number;
  users?: number;
  turns?: number;
  thinkTime?: number;
  usersPerIp?: number;
  trace?: string;
  traceFormat?: string;
  rateScale?: number;
  /** Seeds for a paired comparison (`1-10` or `1,2,5`); overrides `seed`. */
  seeds?: string;
  /** Baseline strategy of the paired comparison (default sglang if run, else the first one). */
  baseline?: string;
  /** Closed-loop clients for saturation throughput. */
  closedLoop?: number;
  sloTtftMs?: number;
  sloTpotMs?: number;
  eventDelayMs?: number;
  eventLoss?: number;
  /** KV capacity multipliers of the profile's, e.g. `0.5x,1x,2x`. */
  capacity?: string;
}

/** "1-5,9" -> [1, 2, 3, 4, 5, 9]. */
export function parseSeedList(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new KvrError('KVR_ERR_USAGE', `--seeds: "${part}" is not a seed or a range like 1-10`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 1000) throw new KvrError('KVR_ERR_USAGE', `--seeds: range "${part}" must go up and hold at most 1,000 seeds`);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** "0.5x,1x,2x" -> [0.5, 1, 2]. */
export function parseCapacities(s: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim().replace(/x$/i, '')));
  if (out.length === 0 || out.some((x) => !(x > 0) || !Number.isFinite(x))) {
    throw new KvrError('KVR_ERR_USAGE', `--capacity must be multipliers of the profile's KV capacity like 0.5x,1x,2x; got "${s}"`);
  }
  return out;
}

/** Parses `3` or `3,10,60` into a rate or a ladder. */
export function parseRates(s: string): number | number[] {
  const parts = s.split(',').map((x) => Number(x.trim()));
  if (parts.length === 0 || parts.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new KvrError('KVR_ERR_USAGE', `--rate must be a positive number or a comma-separated ladder like 3,10,60; got "${s}"`);
  }
  return parts.length === 1 ? parts[0] : parts;
}

/**
 * Runs the command: report to `out` (table or JSON), progress to `err` (TTY only). The virtual
 * engine runs on a worker thread with a larger young generation (bench-thread.ts): same output,
 * errors and report.
 */
export async function runBenchCommand(o: BenchCliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream): Promise<BenchReport> {
  if (o.engine === 'virtual') {
    boundHeapGrowth(); // process-wide: the worker's heap too
    return runBenchCommandInWorker(o, out, err);
  }
  return runBenchCommandHere(o, out, err);
}

/** {@link runBenchCommand} on this thread. */
export async function runBenchCommandHere(o: BenchCliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream): Promise<BenchReport> {
  if (o.traceFormat !== undefined && o.traceFormat !== 'mooncake' && o.traceFormat !== 'bailian') {
    throw new KvrError('KVR_ERR_USAGE', `--trace-format must be mooncake or bailian; got "${o.traceFormat}"`);
  }
  if (o.engine === 'virtual') boundHeapGrowth(); // a batch run in this process: peak RSS near the live set
  const bar = progressBar(err);
  const names = o.strategies === undefined ? (o.config && o.config.length > 0 ? [] : STRATEGY_NAMES) : o.strategies.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const base: BenchOptions = {
    workload: o.workload,
    workloadOptions: {
      ...(o.preset !== undefined ? { preset: o.preset } : {}),
      ...(o.requests !== undefined ? { requests: o.requests } : {}),
      ...(o.rate !== undefined ? { rate: parseRates(o.rate) } : {}),
      ...(o.model !== undefined ? { model: o.model } : {}),
      ...(o.groups !== undefined ? { groups: o.groups } : {}),
      ...(o.promptsPerGroup !== undefined ? { promptsPerGroup: o.promptsPerGroup } : {}),
      ...(o.systemTokens !== undefined ? { systemTokens: o.systemTokens } : {}),
      ...(o.questionTokens !== undefined ? { questionTokens: o.questionTokens } : {}),
      ...(o.outputTokens !== undefined ? { outputTokens: o.outputTokens } : {}),
      ...(o.users !== undefined ? { users: o.users } : {}),
      ...(o.turns !== undefined ? { turns: o.turns } : {}),
      ...(o.thinkTime !== undefined ? { thinkTimeS: o.thinkTime } : {}),
      ...(o.usersPerIp !== undefined ? { usersPerIp: o.usersPerIp } : {}),
      trace: {
        ...(o.trace !== undefined ? { file: o.trace } : {}),
        ...(o.traceFormat !== undefined ? { format: o.traceFormat as 'mooncake' | 'bailian' } : {}),
        ...(o.rateScale !== undefined ? { rateScale: o.rateScale } : {}),
      },
    },
    strategies: names,
    configs: o.config ?? [],
    engine: o.engine as 'virtual' | 'live',
    ...(o.endpoints !== undefined ? { endpoints: o.endpoints.split(',').map((s) => s.trim()).filter((s) => s.length > 0) } : {}),
    ...(o.gatewayUrl !== undefined ? { gatewayUrl: o.gatewayUrl } : {}),
    ...(o.gatewayProcess === true ? { gatewayProcess: true } : {}),
    replicas: o.replicas,
    profile: o.profile as ProfileId,
    ...(o.gpuBlocks !== undefined ? { gpuBlocks: o.gpuBlocks } : {}),
    ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
    ...(o.maxNumSeqs !== undefined ? { maxNumSeqs: o.maxNumSeqs } : {}),
    ...(o.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: o.maxNumBatchedTokens } : {}),
    seed: o.seed,
    ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
    onProgress: bar,
    ...(o.closedLoop !== undefined ? { closedLoopUsers: o.closedLoop } : {}),
    ...(o.sloTtftMs !== undefined || o.sloTpotMs !== undefined ? { slo: { ttftMs: o.sloTtftMs ?? DEFAULT_SLO.ttftMs, tpotMs: o.sloTpotMs ?? DEFAULT_SLO.tpotMs } } : {}),
    ...(o.eventDelayMs !== undefined || o.eventLoss !== undefined ? { precise: withEventFaults(defaultPreciseSetup, { delayMs: o.eventDelayMs ?? 0, loss: o.eventLoss ?? 0, seed: o.seed }) } : {}),
  };
  const seeds = o.seeds !== undefined ? parseSeedList(o.seeds) : [o.seed];
  const capacities = o.capacity !== undefined ? parseCapacities(o.capacity) : [undefined];
  if (o.capacity !== undefined && o.gpuBlocks !== undefined) throw new KvrError('KVR_ERR_USAGE', 'give --capacity or --gpu-blocks, not both');
  const perReplica = getProfile(o.profile).numGpuBlocks;
  let first: BenchReport | undefined;
  const json: unknown[] = [];
  try {
    for (const mult of capacities) {
      const reports: BenchReport[] = [];
      for (const seed of seeds) {
        const r = await runBench({ ...base, seed, ...(mult !== undefined ? { gpuBlocks: Math.max(1, Math.round(mult * perReplica)) } : {}) });
        reports.push(r);
        first ??= r;
      }
      const label = mult !== undefined ? `capacity ${mult}x (${Math.round(mult * perReplica).toLocaleString('en-US')} blocks per replica)` : undefined;
      if (seeds.length === 1) {
        if (o.json) json.push(mult !== undefined ? { capacity: mult, report: reports[0] } : reports[0]);
        else out.write((label ? `== ${label}\n` : '') + formatBenchReport(reports[0], o.details === true) + '\n');
        continue;
      }
      const names = reports[0].strategies.map((x) => x.name);
      const baseline = o.baseline === 'sglang' ? 'sglang-idealised' : o.baseline ?? (names.includes('sglang-idealised') ? 'sglang-idealised' : names.find((n) => n !== 'kvroute') ?? names[0]);
      if (!names.includes(baseline)) throw new KvrError('KVR_ERR_USAGE', `--baseline ${baseline} is not one of the strategies run (${names.join(', ')})`);
      const paired = comparePaired(reports, baseline);
      if (o.json) json.push({ ...(mult !== undefined ? { capacity: mult } : {}), seeds, baseline, paired, reports });
      else {
        bar.end();
        out.write((label ? `== ${label}\n` : '') + `kvroute bench: ${reports[0].workload.description}\n` + formatPaired(paired, baseline, seeds) + '\n');
      }
    }
  } finally {
    bar.end();
  }
  if (o.json) out.write(JSON.stringify(json.length === 1 ? json[0] : json, null, 2) + '\n');
  if (o.html !== undefined && first !== undefined) {
    writeFileSync(o.html, renderHtmlReport(first));
    err.write(`kvroute bench: HTML report written to ${o.html}${seeds.length > 1 || capacities.length > 1 ? ' (first seed / capacity only)' : ''}\n`);
  }
  return first!;
}
