/**
 * Glue between the `kvroute bench` flags and {@link runBench}: maps parsed flag values onto
 * BenchOptions, shows the progress bar on a TTY, writes the outputs. The CLI only parses.
 */
import { writeFileSync } from 'node:fs';
import { KvrError } from '../core/errors.js';
import type { ProfileId } from '../sim/profiles.js';
import { renderHtmlReport } from './html-report.js';
import { benchJson, formatBenchReport, progressBar } from './report.js';
import { runBench, type BenchReport } from './run-bench.js';
import { STRATEGY_NAMES } from './strategies.js';

/** Flag values of `kvroute bench` (commander's camelCase names). */
export interface BenchCliOptions {
  workload: string;
  preset?: string;
  strategies?: string;
  config?: string[];
  engine: string;
  endpoints?: string;
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
}

/** Parses `3` or `3,10,60` into a rate or a ladder. */
export function parseRates(s: string): number | number[] {
  const parts = s.split(',').map((x) => Number(x.trim()));
  if (parts.length === 0 || parts.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new KvrError('KVR_ERR_USAGE', `--rate must be a positive number or a comma-separated ladder like 3,10,60; got "${s}"`);
  }
  return parts.length === 1 ? parts[0] : parts;
}

/** Runs the command: report to `out` (table or JSON), progress to `err` (TTY only). */
export async function runBenchCommand(o: BenchCliOptions, out: NodeJS.WritableStream, err: NodeJS.WriteStream): Promise<BenchReport> {
  if (o.traceFormat !== undefined && o.traceFormat !== 'mooncake' && o.traceFormat !== 'bailian') {
    throw new KvrError('KVR_ERR_USAGE', `--trace-format must be mooncake or bailian; got "${o.traceFormat}"`);
  }
  const bar = progressBar(err);
  const names = o.strategies === undefined ? (o.config && o.config.length > 0 ? [] : STRATEGY_NAMES) : o.strategies.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const report = await runBench({
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
    replicas: o.replicas,
    profile: o.profile as ProfileId,
    ...(o.gpuBlocks !== undefined ? { gpuBlocks: o.gpuBlocks } : {}),
    ...(o.blockSize !== undefined ? { blockSize: o.blockSize } : {}),
    ...(o.maxNumSeqs !== undefined ? { maxNumSeqs: o.maxNumSeqs } : {}),
    ...(o.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: o.maxNumBatchedTokens } : {}),
    seed: o.seed,
    ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
    onProgress: bar,
  }).finally(() => bar.end());
  out.write((o.json ? benchJson(report) : formatBenchReport(report, o.details === true)) + '\n');
  if (o.html !== undefined) {
    writeFileSync(o.html, renderHtmlReport(report));
    err.write(`kvroute bench: HTML report written to ${o.html}\n`);
  }
  return report;
}
