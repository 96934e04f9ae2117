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
import type { KvEvent, KvEventBatch, KvEventSink } from '../events/types.js';
import type { KvrouteScheduler } from '../scheduling/scheduler.js';
import { RequestLifecycles } from '../lifecycle/request-lifecycle.js';
import { RouterMetrics } from '../metrics/router-metrics.js';
import { SimEngine } from '../sim/engine.js';
import type { KvCacheEvent } from '../sim/block-manager.js';
import { getProfile, type ProfileId } from '../sim/profiles.js';
import type { SimTokenizer } from '../sim/tokenizer.js';
import { BENCH_TOKENS_MEMO, type PreciseSetupFactory } from './precise-setup.js';
import { builtinTokenizer, promptTokens, toInferenceRequest } from './prompt.js';
import type { Strategy } from './strategies.js';
import type { CacheCounters, EngineRun, RequestRecord, Workload } from './types.js';

/** The simulated fleet of a run. */
export interface FleetSpec {
  replicas: number;
  profile: ProfileId;
  /** KV capacity per replica in blocks (default: the profile's). */
  numGpuBlocks?: number;
  blockSize: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  seed: number;
}

/** Options of {@link runVirtual}. */
export interface VirtualRunOptions {
  precise?: PreciseSetupFactory;
  /** Engine metrics refresh period (ms of simulated time), like the gateway's scrape interval. Default 50. */
  scrapeIntervalMs?: number;
  /** Called after each request is handed to an engine. */
  onProgress?: (done: number, total: number) => void;
  tokenizer?: SimTokenizer;
}

/** Result of one virtual run: the engine run, or why it was skipped. */
export type StrategyRun = { run: EngineRun; notes: string[] } | { skipped: string };

function toKvEvent(ev: KvCacheEvent): KvEvent {
  if (ev.type === 'BlockStored') {
    return { type: 'BlockStored', blockHashes: ev.blockHashes, parentBlockHash: ev.parentBlockHash, tokenIds: ev.tokenIds, blockSize: ev.blockSize, loraId: null, medium: ev.medium, loraName: null };
  }
  if (ev.type === 'BlockRemoved') return { type: 'BlockRemoved', blockHashes: ev.blockHashes, medium: ev.medium };
  return { type: 'AllBlocksCleared' };
}

/** Per-engine event batching: events emitted at one clock time by one engine form one batch. */
class EventBatcher {
  #pending: { at: number; events: KvEvent[] }[][];
  #seq: bigint[];
  constructor(n: number) {
    this.#pending = Array.from({ length: n }, () => []);
    this.#seq = Array.from({ length: n }, () => 0n);
  }
  push(engine: number, at: number, ev: KvCacheEvent): void {
    const q = this.#pending[engine];
    const last = q[q.length - 1];
    if (last !== undefined && last.at === at) last.events.push(toKvEvent(ev));
    else q.push({ at, events: [toKvEvent(ev)] });
  }
  /** Hands every pending batch to the sink, engine by engine, in order. */
  async flush(sink: KvEventSink, ids: readonly string[], model: string): Promise<void> {
    for (let i = 0; i < this.#pending.length; i++) {
      const q = this.#pending[i];
      if (q.length === 0) continue;
      this.#pending[i] = [];
      for (const b of q) {
        const batch: KvEventBatch = { ts: b.at / 1000, events: b.events, dataParallelRank: null };
        await sink.applyBatch(ids[i], model, this.#seq[i]++, batch);
      }
    }
  }
}

function counters(engines: readonly SimEngine[]): CacheCounters[] {
  return engines.map((e) => {
    const s = e.stats();
    return { queries: s.prefixCacheQueries, hits: s.prefixCacheHits };
  });
}

function delta(a: readonly CacheCounters[], b: readonly CacheCounters[]): CacheCounters[] {
  return b.map((x, i) => ({ queries: x.queries - a[i].queries, hits: x.hits - a[i].hits }));
}

/** Runs `workload` with `strategy` on a fresh simulated fleet in simulated time. */
export async function runVirtual(workload: Workload, strategy: Strategy, fleet: FleetSpec, o: VirtualRunOptions = {}): Promise<StrategyRun> {
  const clock = new ManualClock(0);
  const profile = getProfile(fleet.profile);
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
  const batcher = precise?.sink !== undefined ? new EventBatcher(n) : undefined;
  const engines = ids.map(
    (_, i) =>
      new SimEngine({
        clock,
        stepModel: profile.step,
        blockSize: fleet.blockSize,
        numGpuBlocks: fleet.numGpuBlocks ?? profile.numGpuBlocks,
        maxNumSeqs: fleet.maxNumSeqs ?? profile.maxNumSeqs,
        maxNumBatchedTokens: fleet.maxNumBatchedTokens,
        seed: fleet.seed,
        sampleToken: (r) => tokenizer.sampleToken(r),
        eosTokenId: tokenizer.eosTokenId,
        ...(batcher !== undefined ? { onKvEvent: (ev: KvCacheEvent) => batcher.push(i, clock.now(), ev) } : {}),
      }),
  );
  const endpoints: Endpoint[] = ids.map((id, i) => ({
    id,
    address: id,
    url: `virtual://${id}`,
    role: 'both',
    engine: 'vllm',
    index: i,
    labels: {},
    metrics: { waiting: 0, running: 0, kvUsage: 0, updatedAt: 0 },
    models: [workload.model],
    healthy: true,
  }));
  const scheduler: KvrouteScheduler = strategy.build(clock, seededRng(fleet.seed * 31 + 7), precise?.services);
  const lifecycles = new RequestLifecycles({ scheduler, clock, metrics: new RouterMetrics({ clock }), maxRetries: 0, upstreamTimeoutMs: 0 });
  const scrape = o.scrapeIntervalMs ?? 50;
  let lastScrape = -Infinity;
  const refresh = () => {
    const now = clock.now();
    if (now - lastScrape < scrape) return;
    lastScrape = now;
    for (let i = 0; i < n; i++) {
      const s = engines[i].stats();
      endpoints[i].metrics = {
        waiting: s.waiting, running: s.running, kvUsage: s.kvUsage, blockSize: s.blockSize, numGpuBlocks: s.numGpuBlocks,
        prefixQueries: s.prefixCacheQueries, prefixHits: s.prefixCacheHits, updatedAt: now,
      };
    }
  };

  const reqs = workload.requests;
  const records: RequestRecord[] = [];
  const phases: { name: string; counters: CacheCounters[] }[] = [];
  let phaseName: string | undefined;
  let phaseStart: CacheCounters[] = counters(engines);
  let measuredStart: CacheCounters[] | undefined;
  let measuredT0 = 0;
  let shift = 0;
  let done = 0;
  const closePhase = () => {
    if (phaseName !== undefined) phases.push({ name: phaseName, counters: delta(phaseStart, counters(engines)) });
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
    if (batcher !== undefined) await batcher.flush(precise!.sink!, ids, workload.model);
    if (req.phase !== phaseName) {
      closePhase();
      phaseName = req.phase;
      phaseStart = counters(engines);
    }
    if (measuredStart === undefined && req.phase !== 'warmup') {
      measuredStart = counters(engines);
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
  if (batcher !== undefined) await batcher.flush(precise!.sink!, ids, workload.model);
  closePhase();
  const end = counters(engines);
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
