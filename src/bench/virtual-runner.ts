/**
 * The virtual engine: the same scheduler (built from the strategy's config) and the same
 * {@link SimEngine} as the live fleet, driven by a {@link ManualClock}: no sockets, no wall time,
 * deterministic for a seed.
 *
 *   for each request, in arrival order:
 *     (barrier: run the engines until idle, shift later arrivals by the wait)
 *     clock.advanceTo(arrival)          engines step; first tokens / completions call the scheduler
 *     deliver KV event batches          one batch per engine step, in order, to the precise sink
 *     refresh endpoint metrics          what the gateway's scraper would have read (every 50 ms)
 *     lifecycle.decide(request)         the router's decision (the same RequestLifecycle the
 *                                       gateway uses: scheduler hooks, load, metrics)
 *     engine.submit(prompt tokens)      on the chosen replica; first token / finish / error
 *                                       are reported to the lifecycle's attempt
 *   run until idle
 *
 * Endpoint metrics are refreshed lazily: a snapshot is taken when the last one is at least
 * `scrapeIntervalMs` old, which is what a periodic scrape gives up to the phase of the period.
 */
import { ManualClock } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { seededRng } from '../core/rng.js';
import type { InferenceRequest } from '../core/request.js';
import type { KvrouteScheduler } from '../scheduling/scheduler.js';
import { RequestLifecycles } from '../lifecycle/request-lifecycle.js';
import { RouterMetrics } from '../metrics/router-metrics.js';
import type { SimTokenizer } from '../sim/tokenizer.js';
import { BENCH_TOKENS_MEMO, type PreciseSetupFactory } from './precise-setup.js';
import { builtinTokenizer, promptTokens, toInferenceRequest } from './prompt.js';
import type { Strategy } from './strategies.js';
import type { BenchRequest, CacheCounters, EngineRun, RequestRecord } from './types.js';
import { createVirtualFleet, type FleetSpec } from './virtual-fleet.js';

export type { FleetSpec } from './virtual-fleet.js';

/** Options of {@link runVirtual}. */
export interface VirtualRunOptions {
  precise?: PreciseSetupFactory;
  /** Engine metrics refresh period (ms of simulated time), like the gateway's scrape interval. Default 50. */
  scrapeIntervalMs?: number;
  /** Called after each request is handed to an engine. */
  onProgress?: (done: number, total: number) => void;
  tokenizer?: SimTokenizer;
}

/**
 * The requests of a run: an array, or any iterable that knows its length (a generator that builds
 * each request when the runner reaches it, so a million-request run never holds them all).
 */
export interface RequestSource extends Iterable<BenchRequest> {
  readonly length: number;
}

/** What {@link runVirtual} reads of a workload. */
export interface VirtualWorkload {
  readonly model: string;
  readonly requests: RequestSource;
}

/** Result of one virtual run: the engine run, or why it was skipped. */
export type StrategyRun = { run: EngineRun; notes: string[] } | { skipped: string };

function delta(a: readonly CacheCounters[], b: readonly CacheCounters[]): CacheCounters[] {
  return b.map((x, i) => ({ queries: x.queries - a[i].queries, hits: x.hits - a[i].hits }));
}

/** Runs `workload` with `strategy` on a fresh simulated fleet in simulated time. */
export async function runVirtual(workload: VirtualWorkload, strategy: Strategy, fleet: FleetSpec, o: VirtualRunOptions = {}): Promise<StrategyRun> {
  const clock = new ManualClock(0);
  const tokenizer = o.tokenizer ?? builtinTokenizer();
  const n = fleet.replicas;
  const ids = Array.from({ length: n }, (_, i) => `sim-${i}`);
  const notes: string[] = [];
  let precise = undefined as Awaited<ReturnType<PreciseSetupFactory>>;
  if (strategy.kvEvents) {
    precise = o.precise ? await o.precise({ mode: 'virtual', clock, model: workload.model, blockSize: fleet.blockSize, endpoints: ids.map((id) => ({ id })) }) : undefined;
    if (precise === undefined) {
      if (strategy.name === 'llm-d-precise') return { skipped: 'no precise KV-cache services in virtual mode' };
      notes.push('precise scorer without KV events: it routes approximately');
    } else {
      notes.push(`precise index: ${precise.description}`);
    }
  }
  const { engines, endpoints, refresh, flush, counters } = createVirtualFleet(fleet, {
    clock, tokenizer, model: workload.model, ...(o.scrapeIntervalMs !== undefined ? { scrapeIntervalMs: o.scrapeIntervalMs } : {}), ...(precise?.sink !== undefined ? { sink: precise.sink } : {}),
  });
  const scheduler: KvrouteScheduler = strategy.build(clock, seededRng(fleet.seed * 31 + 7), precise?.services);
  const lifecycles = new RequestLifecycles({ scheduler, clock, metrics: new RouterMetrics({ clock }), maxRetries: 0, upstreamTimeoutMs: 0 });
  const reqs = workload.requests;
  const records: RequestRecord[] = [];
  const phases: { name: string; counters: CacheCounters[] }[] = [];
  let phaseName: string | undefined;
  let phaseStart: CacheCounters[] = counters();
  let measuredStart: CacheCounters[] | undefined;
  let measuredT0 = 0;
  let shift = 0;
  let done = 0;
  const closePhase = () => {
    if (phaseName !== undefined) phases.push({ name: phaseName, counters: delta(phaseStart, counters()) });
  };
  const runIdle = () => {
    while (clock.nextAt() !== undefined) clock.runUntilIdle(10_000_000);
  };

  for (const req of reqs) {
    if (req.barrier) {
      runIdle();
      shift = Math.max(shift, clock.now() - req.atMs);
    }
    const at = req.atMs + shift;
    clock.advanceTo(at);
    await flush();
    if (req.phase !== phaseName) {
      closePhase();
      phaseName = req.phase;
      phaseStart = counters();
    }
    if (measuredStart === undefined && req.phase !== 'warmup') {
      measuredStart = counters();
      measuredT0 = at;
    }
    refresh();
    const p = req.prompt();
    const tokens = promptTokens(p, tokenizer);
    const ireq: InferenceRequest = toInferenceRequest(workload.model, req, p, at);
    ireq.memo.set(BENCH_TOKENS_MEMO, tokens);
    const rec: RequestRecord = { index: req.index, phase: req.phase, session: req.session, replica: -1, arrivalMs: at, promptTokens: tokens.length, cachedTokens: 0, outputTokens: 0, ok: false };
    records.push(rec);
    const lc = lifecycles.begin({ id: ireq.id, arrivedAt: at });
    let ep: Endpoint;
    try {
      ep = (await lc.decide(ireq, endpoints)).result.endpoint;
    } catch (err) {
      rec.error = lc.reject(err).message;
      continue;
    }
    rec.replica = ep.index;
    const att = lc.dispatch();
    const fail = (msg: string) => {
      rec.error = msg;
      rec.e2eMs = clock.now() - at;
      att.fail({ kind: 'request', message: msg });
    };
    try {
      engines[ep.index].submit(
        { id: ireq.id, promptTokens: tokens, maxTokens: req.maxTokens, ignoreEos: true },
        {
          onFirstToken: (info) => {
            rec.ttftMs = clock.now() - at;
            rec.cachedTokens = info.cachedTokens;
            att.firstToken();
          },
          onFinish: (r) => {
            rec.ok = true;
            rec.e2eMs = clock.now() - at;
            rec.outputTokens = r.completionTokens;
            rec.cachedTokens = r.cachedTokens;
            att.end({ status: 200, usage: { promptTokens: r.promptTokens, cachedTokens: r.cachedTokens, completionTokens: r.completionTokens } });
          },
          onError: (err) => fail(err.message),
        },
      );
    } catch (err) {
      fail((err as Error).message);
    }
    done++;
    o.onProgress?.(done, reqs.length);
  }
  runIdle();
  await flush();
  closePhase();
  const end = counters();
  let lastFinish = measuredT0;
  for (const r of records) if (r.e2eMs !== undefined && r.phase !== 'warmup') lastFinish = Math.max(lastFinish, r.arrivalMs + r.e2eMs);
  await precise?.close();
  return {
    notes,
    run: {
      records,
      measured: delta(measuredStart ?? end, end),
      phases,
      total: end,
      busyMs: engines.map((e) => e.busyMs),
      durationMs: lastFinish - measuredT0,
      replicaNames: ids,
      notes: ['virtual engine: simulated time, hit rates from the engines\' own prefix-cache counters'],
    },
  };
}
