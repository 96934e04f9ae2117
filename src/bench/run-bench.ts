/**
 * `kvroute bench`: runs one workload with several routing strategies, each on a FRESH fleet, on
 * the virtual engine (simulated time, deterministic) or the live one (real HTTP through the
 * gateway), and computes the same figures for each, plus the pooled-cache oracle bound.
 */
import { request } from 'undici';
import { KvrError } from '../core/errors.js';
import { parsePromText } from '../datalayer/prom-text.js';
import { namesFor, toEndpointMetrics } from '../datalayer/metric-maps.js';
import { getProfile, type ProfileId } from '../sim/profiles.js';
import { computeFigures, firstErrors, type Slo, type StrategyFigures } from './figures.js';
import { runClosedLoop, type SaturationFigures } from './closed-loop.js';
import { runLive } from './live-runner.js';
import { PooledCacheOracle } from './oracle.js';
import { referenceHitRates } from './reference-rates.js';
import { startReferencePass, type ReferencePass } from './reference-pass.js';
import { defaultPreciseSetup, type PreciseSetupFactory } from './precise-setup.js';
import { builtinTokenizer, promptTokens } from './prompt.js';
import { resolveStrategies, type Strategy } from './strategies.js';
import type { Workload } from './types.js';
import { runVirtual, type FleetSpec, type StrategyRun } from './virtual-runner.js';
import { createWorkload, type WorkloadOptions } from './workloads.js';

/** Options of {@link runBench} (the CLI maps its flags onto these). */
export interface BenchOptions {
  workload: string;
  workloadOptions?: WorkloadOptions;
  /** Built-in strategy names (strategies.ts). */
  strategies: string[];
  /** Extra EndpointPickerConfig files, each one more strategy. */
  configs?: string[];
  engine: 'virtual' | 'live';
  /** Live engine: external OpenAI-compatible endpoints instead of a simulated fleet. */
  endpoints?: string[];
  /**
   * Live engine with `endpoints`: send every request to this already running gateway (kvroute,
   * llm-d behind Envoy, any router) instead of a kvroute gateway started per strategy; hit rates
   * still come from the endpoints' own counters. Replaces `strategies` with one entry, "gateway".
   */
  gatewayUrl?: string;
  replicas: number;
  profile?: ProfileId;
  /** KV blocks per replica (default: the profile's). */
  gpuBlocks?: number;
  blockSize?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  seed?: number;
  /** Live simulated fleet: step and arrival time multiplier. */
  timeScale?: number;
  /** Live engine: run kvroute's gateway as its own `kvroute serve` process, like the live peers. */
  gatewayProcess?: boolean;
  /** Precise services (default {@link defaultPreciseSetup}). */
  precise?: PreciseSetupFactory;
  /** Also run each strategy closed-loop with this many clients (virtual engine): saturation throughput. */
  closedLoopUsers?: number;
  /** Goodput targets (defaults {@link DEFAULT_SLO}). */
  slo?: Slo;
  /**
   * Compute the pooled-LRU reference and the OPT bound on a worker thread, beside the runs (same
   * figures; wall time only). Default: virtual engine from {@link REFERENCE_WORKER_MIN_REQUESTS}
   * requests up (a live run measures latencies: the pass runs before it, in process).
   */
  referenceWorker?: boolean;
  /** Progress of the current strategy. */
  onProgress?: (p: { strategy: string; index: number; of: number; done: number; total: number }) => void;
}

/** One strategy's entry in the report: what it is, then every figure. */
export interface StrategyReport extends StrategyFigures {
  /** Closed-loop saturation figures (with `closedLoopUsers`, virtual engine). */
  saturation?: SaturationFigures;
  name: string;
  about: string;
  source: string;
  notes: string[];
  errors: string[];
}

/** The `--json` report (schema version 1, docs/bench.md). */
export interface BenchReport {
  version: 1;
  engine: 'virtual' | 'live';
  seed: number;
  workload: { name: string; description: string; model: string; requests: number; params: Record<string, unknown> };
  fleet: {
    replicas: number;
    profile: string;
    blockSize: number;
    numGpuBlocksPerReplica: number;
    capacityBlocks: number;
    capacityTokens: number;
    timeScale: number | null;
    endpoints: string[] | null;
  };
  /**
   * References on one pooled cache of the fleet's capacity: `hitRate` = the pooled-LRU reference
   * (not a bound once eviction happens), `optHitRate` = Belady/OPT, the real upper bound.
   */
  oracle: { hitRate: number; capacityBlocks: number; kind: 'pooled-lru'; optHitRate: number };
  strategies: StrategyReport[];
  skipped: { name: string; reason: string }[];
  notes: string[];
  /** Wall-clock seconds the whole bench took (the only field that varies between equal runs). */
  wallSeconds: number;
}

export { referenceHitRates } from './reference-rates.js';

/** Workloads from this many requests up get their reference pass on a worker thread (see {@link BenchOptions.referenceWorker}). */
export const REFERENCE_WORKER_MIN_REQUESTS = 20_000;

/** The pooled-LRU reference hit rate of a workload (see {@link referenceHitRates}). */
export function oracleHitRate(workload: Workload, capacityBlocks: number, blockSize: number): number {
  const oracle = new PooledCacheOracle(capacityBlocks, blockSize);
  const tok = builtinTokenizer();
  for (const r of workload.requests) oracle.feed(promptTokens(r.prompt(), tok), r.phase !== 'warmup');
  return oracle.hitRate;
}

async function endpointCapacity(url: string): Promise<number | undefined> {
  try {
    const res = await request(`${url.replace(/\/+$/, '')}/metrics`);
    const text = await res.body.text();
    if (res.statusCode !== 200) return undefined;
    return toEndpointMetrics('vllm', parsePromText(text, namesFor('vllm')).samples, 0)?.numGpuBlocks;
  } catch {
    return undefined;
  }
}


/** The one "strategy" of a run through an external gateway: it routes by itself, nothing to build. */
function externalGatewayStrategy(url: string): Strategy {
  return {
    name: 'gateway',
    about: `the gateway already running at ${url} (its own routing; kvroute only sends the workload and reads the endpoints' counters)`,
    source: url,
    kvEvents: false,
    build: () => {
      throw new KvrError('KVR_ERR_INTERNAL', 'an external gateway has no scheduler to build');
    },
  };
}

/** Runs the benchmark; throws KvrError on bad options (before anything runs). */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const started = performance.now();
  const seed = o.seed ?? 1;
  const profile: ProfileId = o.profile ?? 'llama-3.1-8b';
  const prof = getProfile(profile);
  if (!(o.replicas >= 1) || !Number.isInteger(o.replicas)) throw new KvrError('KVR_ERR_USAGE', `--replicas must be a positive integer; got ${o.replicas}`);
  if (o.engine !== 'virtual' && o.engine !== 'live') throw new KvrError('KVR_ERR_USAGE', `--engine must be virtual or live; got ${o.engine}`);
  if (o.endpoints && o.engine !== 'live') throw new KvrError('KVR_ERR_USAGE', '--endpoints needs --engine live');
  if (o.gatewayProcess === true && o.engine !== 'live') throw new KvrError('KVR_ERR_USAGE', '--gateway-process runs kvroute\'s gateway as its own process on the live engine; add --engine live');
  if (o.closedLoopUsers !== undefined && o.engine !== 'virtual') throw new KvrError('KVR_ERR_USAGE', '--closed-loop runs on the virtual engine only');
  if (o.gatewayUrl !== undefined) {
    if (o.engine !== 'live' || !o.endpoints || o.endpoints.length === 0) {
      throw new KvrError('KVR_ERR_USAGE', '--gateway-url needs --engine live and --endpoints (the model servers behind the gateway, whose /metrics give the hit rates)');
    }
    if (!/^https?:\/\/[^/\s]+/.test(o.gatewayUrl)) throw new KvrError('KVR_ERR_USAGE', `--gateway-url must be an http(s) URL such as http://gateway:8000; got "${o.gatewayUrl}"`);
  }
  const strategies: Strategy[] = o.gatewayUrl !== undefined ? [externalGatewayStrategy(o.gatewayUrl)] : resolveStrategies(o.strategies, o.configs ?? []);
  const peers = strategies.filter((s) => s.peer !== undefined);
  if (peers.length > 0 && o.engine !== 'live') throw new KvrError('KVR_ERR_USAGE', `${peers.map((s) => s.name).join(', ')}: real routers run on the live engine only; add --engine live (the simulated fleet is started for each strategy)`);
  const ext = peers.filter((s) => s.peer!.external);
  if (ext.length > 0 && !o.endpoints) throw new KvrError('KVR_ERR_USAGE', `${ext.map((s) => s.name).join(', ')}: an external router routes to its own model servers; pass them as --endpoints so the bench can clear their caches and read their counters`);
  const workload = createWorkload(o.workload, { seed, ...o.workloadOptions });
  const blockSize = o.blockSize ?? 16;
  const notes: string[] = [];
  const replicas = o.endpoints ? o.endpoints.length : o.replicas;
  let perReplica = o.gpuBlocks ?? prof.numGpuBlocks;
  if (o.endpoints) {
    const caps = await Promise.all(o.endpoints.map((u) => endpointCapacity(/^https?:\/\//.test(u) ? u : `http://${u}`)));
    if (caps.every((c) => c !== undefined && c > 0)) perReplica = Math.round(caps.reduce((a, b) => a! + b!, 0)! / caps.length);
    else notes.push(`endpoints do not all report vllm:cache_config_info num_gpu_blocks; capacity assumed ${perReplica} blocks each`);
    notes.push('pooled-LRU reference and OPT bound computed with the simulator\'s tokenizer (token counts of a real tokenizer differ)');
  }
  const fleet: FleetSpec = {
    replicas, profile, blockSize, seed,
    ...(o.gpuBlocks !== undefined ? { numGpuBlocks: o.gpuBlocks } : {}),
    ...(o.maxNumSeqs !== undefined ? { maxNumSeqs: o.maxNumSeqs } : {}),
    ...(o.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: o.maxNumBatchedTokens } : {}),
  };
  const capacityBlocks = perReplica * replicas;
  // The references read the workload only: on a worker they run beside the first strategy's run.
  // Not beside a live run: its CPU would disturb the latencies measured over real sockets.
  const offThread = o.referenceWorker ?? (o.engine === 'virtual' && workload.requests.length >= REFERENCE_WORKER_MIN_REQUESTS);
  const pass: ReferencePass | undefined = offThread
    ? startReferencePass({ workload: o.workload, options: { seed, ...o.workloadOptions }, capacityBlocks, blockSize })
    : undefined;
  let refs = pass === undefined ? referenceHitRates(workload, capacityBlocks, blockSize) : undefined;
  const precise = o.precise ?? defaultPreciseSetup;
  const out: StrategyReport[] = [];
  const skipped: { name: string; reason: string }[] = [];
  try {
    for (let i = 0; i < strategies.length; i++) {
      const s = strategies[i];
      const onProgress = (done: number, total: number) => o.onProgress?.({ strategy: s.name, index: i, of: strategies.length, done, total });
      const res: StrategyRun =
        o.engine === 'virtual'
          ? await runVirtual(workload, s, fleet, { precise, onProgress })
          : await runLive(workload, s, fleet, { precise, onProgress, ...(o.endpoints ? { endpoints: o.endpoints } : {}), ...(o.gatewayUrl !== undefined ? { gatewayUrl: o.gatewayUrl } : {}), ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}), ...(o.gatewayProcess === true ? { gatewayProcess: true } : {}) });
      if ('skipped' in res) {
        skipped.push({ name: s.name, reason: res.skipped });
        continue;
      }
      const saturation = o.closedLoopUsers !== undefined ? await runClosedLoop(workload, s, fleet, o.closedLoopUsers, { precise }) : undefined;
      refs ??= await pass!.result;
      out.push({
        name: s.name,
        about: s.about,
        source: s.source,
        notes: [...res.notes],
        errors: firstErrors(res.run.records),
        ...computeFigures(res.run, refs.lru, 60, { optHitRate: refs.opt, ...(o.slo ? { slo: o.slo } : {}) }),
        ...(saturation !== undefined ? { saturation } : {}),
      });
      if (i === 0) notes.push(...res.run.notes);
    }
    refs ??= await pass!.result;
  } finally {
    pass?.cancel();
  }
  return {
    version: 1,
    engine: o.engine,
    seed,
    workload: { name: workload.name, description: workload.description, model: workload.model, requests: workload.requests.length, params: { ...workload.params } },
    fleet: {
      replicas,
      profile,
      blockSize,
      numGpuBlocksPerReplica: perReplica,
      capacityBlocks,
      capacityTokens: capacityBlocks * blockSize,
      timeScale: o.engine === 'live' && !o.endpoints ? (o.timeScale ?? 1) : null,
      endpoints: o.endpoints ?? null,
    },
    oracle: { hitRate: refs.lru, capacityBlocks, kind: 'pooled-lru', optHitRate: refs.opt },
    strategies: out,
    skipped,
    notes,
    wallSeconds: (performance.now() - started) / 1000,
  };
}
