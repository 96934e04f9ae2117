/**
 * The live engine: real HTTP through the real gateway (`startRouter`, the strategy's scheduler)
 * to either a fresh simulated fleet per strategy (`startFleet`, with a time scale) or endpoints
 * the user names (any OpenAI-compatible servers; vLLM's `/metrics` give the hit rates).
 *
 * - Open loop: request i is sent at `t0 + atMs x timeScale` (wall clock) whatever happened to
 *   earlier ones; a `barrier` request waits for every earlier one to finish first.
 * - Client address: the gateway trusts X-Forwarded-For, which carries the workload's client IP.
 * - Timings are measured by the client (TTFT = first streamed text); with the simulator they are
 *   divided by the time scale, so they read in simulated GPU time like the virtual engine's.
 *   Requests the workload marks non-streaming are sent with `stream: false` and read as one
 *   JSON body: no TTFT is observed for them (as the router's lifecycle does when it cannot see
 *   the first token), only the end-to-end time.
 * - Live peers (a strategy with `peer`: the real SGLang router, Envoy LEAST_REQUEST, or an
 *   external router): started per run in front of the fresh fleet (or the external endpoints,
 *   caches cleared) instead of kvroute's gateway, stopped by PID after the run; a request counts
 *   on the replica named by the simulator's `x-kvroute-sim-replica` header, which peers pass on.
 * - Hit rates: deltas of each endpoint's own prefix-cache counters (vLLM `prefix_cache_*_total`,
 *   SGLang `prompt_tokens_total` / `cached_tokens_total`); for an engine without counters
 *   (llama.cpp) the cached and prompt tokens each of its responses reported (usage, timings).
 * - External endpoints (`host:port[;engine=...]`, engine detected when not given) cannot be
 *   restarted: the runner clears each cache the engine's way (vLLM `/reset_prefix_cache`, SGLang
 *   `/flush_cache`, llama.cpp slot erase) and says in the notes what worked and what could not.
 */
import { Agent } from 'undici';
import { systemClock } from '../core/clock.js';
import { mathRng } from '../core/rng.js';
import { streamRequest, type StreamResult } from '../client/openai-stream-client.js';
import { readFleetCounters as readSimCounters } from '../demo/fleet-metrics.js';
import { startRouter, type RunningRouter } from '../server/router.js';
import { startFleet, type SimFleet } from '../sim/fleet.js';
import type { PreciseSetup, PreciseSetupFactory } from './precise-setup.js';
import { requestBody } from './prompt.js';
import type { Strategy } from './strategies.js';
import type { CacheCounters, EngineRun, RequestRecord, Workload } from './types.js';
import type { FleetSpec } from './virtual-runner.js';
import type { StrategyRun } from './virtual-runner.js';
import { adapterFor } from '../engines/registry.js';
import { readEngineCounters, resetCache, resolveLiveEndpoints, type LiveEndpoint } from './live-engines.js';
import { startKvrouteServe, type RunningPeer } from './live-peers.js';

/** Options of {@link runLive}. */
export interface LiveRunOptions {
  /** Base URLs of external OpenAI-compatible endpoints; absent = a simulated fleet. */
  endpoints?: string[];
  /** Simulated step-time multiplier (and arrival-time multiplier). Default 1. */
  timeScale?: number;
  precise?: PreciseSetupFactory;
  onProgress?: (done: number, total: number) => void;
  /** Gateway scrape interval (ms). Default 50. */
  scrapeIntervalMs?: number;
  /**
   * An already running gateway to send every request to (needs `endpoints`): no kvroute gateway
   * is started and the strategy's scheduler is not built. A request counts on the endpoint its
   * response names in `x-kvroute-endpoint` when the gateway is kvroute; other gateways name none,
   * so per-replica figures stay unattributed while hit rates still come from the endpoints.
   */
  gatewayUrl?: string;
  /**
   * Run kvroute's gateway as its own `kvroute serve` process (like the live peers) instead of
   * inside the bench's process, which it would share with the simulated fleet and the client.
   */
  gatewayProcess?: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

function delta(a: readonly CacheCounters[], b: readonly CacheCounters[]): CacheCounters[] {
  return b.map((x, i) => ({ queries: x.queries - a[i].queries, hits: x.hits - a[i].hits }));
}


/** Runs `workload` with `strategy` through the real gateway; see the file comment. */
export async function runLive(workload: Workload, strategy: Strategy, fleetSpec: FleetSpec, o: LiveRunOptions = {}): Promise<StrategyRun> {
  const scale = o.endpoints ? 1 : (o.timeScale ?? 1);
  const notes: string[] = [];
  let fleet: SimFleet | undefined;
  let router: RunningRouter | undefined;
  let precise: PreciseSetup | undefined;
  let peer: RunningPeer | undefined;
  const dispatcher = new Agent({ connections: 1024, keepAliveTimeout: 30_000 });
  try {
    let urls: string[];
    let external: LiveEndpoint[] | undefined;
    if (o.endpoints) {
      external = await resolveLiveEndpoints(o.endpoints);
      urls = external.map((e) => e.url);
      const resets = await Promise.all(external.map(resetCache));
      notes.push(`external endpoints (${external.map((e) => `${e.url.replace(/^https?:\/\//, '')} ${adapterFor(e.engine).label}`).join(', ')}), not restarted; ${resets.every((r) => r.ok) ? 'every cache cleared' : 'NOT every cache could be cleared: results flagged'}`);
      for (const r of resets) if (!r.ok) notes.push(r.note);
      for (const e of external) if (!e.counters) notes.push(`${e.url} (${adapterFor(e.engine).label}) exports no prefix-cache counters: its hit rate comes from the cached tokens its responses report (usage / timings)`);
    } else {
      fleet = await startFleet({
        replicas: fleetSpec.replicas, basePort: 0, model: workload.model, profile: fleetSpec.profile, timeScale: scale,
        blockSize: fleetSpec.blockSize, numGpuBlocks: fleetSpec.numGpuBlocks, maxNumSeqs: fleetSpec.maxNumSeqs,
        maxNumBatchedTokens: fleetSpec.maxNumBatchedTokens, seed: fleetSpec.seed,
        ...(strategy.kvEvents ? { kvEvents: {} } : {}),
      });
      urls = fleet.replicas.map((r) => r.url);
      notes.push(`live engine: fresh simulated fleet, time scale ${scale}; timings divided by the time scale`);
    }
    const ids = urls.map((u) => u.replace(/^https?:\/\//, ''));
    const ownProcess = o.gatewayProcess === true && strategy.peer === undefined && o.gatewayUrl === undefined;
    if (strategy.kvEvents && !ownProcess) {
      const ev = new Map((fleet?.kvEvents ?? []).map((k) => [k.address, k]));
      const endpoints = ids.map((id, i) => ({ id, url: urls[i], events: ev.get(id)?.endpoint, replay: ev.get(id)?.replayEndpoint }));
      precise = o.precise ? await o.precise({ mode: 'live', clock: systemClock, model: workload.model, blockSize: fleetSpec.blockSize, endpoints }) : undefined;
      if (precise === undefined) {
        if (strategy.name === 'llm-d-precise') return { skipped: 'no precise KV-cache services in live mode yet (KV events over ZeroMQ not wired into the bench)' };
        notes.push('precise scorer without KV events: it routes approximately');
      } else {
        notes.push(`precise index: ${precise.description}`);
      }
    }
    if (ownProcess) {
      const ev = new Map((fleet?.kvEvents ?? []).map((k) => [k.address, k]));
      peer = await startKvrouteServe(strategy.source, urls.map((url, i) => {
        const k = strategy.kvEvents ? ev.get(ids[i]) : undefined;
        return { url, ...(k !== undefined ? { events: k.endpoint, ...(k.replayEndpoint !== undefined ? { replay: k.replayEndpoint } : {}) } : {}) };
      }), { scrapeIntervalMs: o.scrapeIntervalMs ?? 50 });
      notes.push(`gateway: ${peer.description}, pid ${peer.pid}, started for this run and stopped after it`);
    }
    if (strategy.peer !== undefined) {
      if (strategy.peer.external && external === undefined) return { skipped: `${strategy.name} is a router already running: it routes to its own fleet, so the bench needs that fleet as --endpoints (for counters and cache resets)` };
      peer = await strategy.peer.launch(urls);
      notes.push(`live peer: ${peer.description}${peer.pid !== undefined ? `, pid ${peer.pid}, started for this run and stopped after it` : ''}`);
    }
    const gatewayUrl = peer?.url ?? o.gatewayUrl?.replace(/\/+$/, '');
    if (gatewayUrl !== undefined && peer === undefined) notes.push(`requests sent through the gateway at ${gatewayUrl} (not started by the bench); replicas attributed from its x-kvroute-endpoint header where it sends one`);
    if (gatewayUrl === undefined) router = await startRouter({
      endpoints: urls.map((url, i) => {
        const k = fleet?.kvEvents.find((e) => e.address === ids[i]);
        const engine = external !== undefined ? { engine: external[i].engine } : {};
        return precise?.routerKvCache !== undefined && k !== undefined ? { url, ...engine, kvEvents: { endpoint: k.endpoint, ...(k.replayEndpoint !== undefined ? { replayEndpoint: k.replayEndpoint } : {}) } } : { url, ...engine };
      }),
      ...(precise?.routerKvCache !== undefined ? { kvCache: precise.routerKvCache, blockSize: fleetSpec.blockSize } : {}),
      scheduler: strategy.build(systemClock, mathRng, precise?.services), port: 0, adminPort: 0, processMetrics: false,
      trustForwardedFor: true, scrapeIntervalMs: o.scrapeIntervalMs ?? 50, clock: systemClock,
    });
    // Endpoint ids (kvroute's x-kvroute-endpoint) and simulator replica ids (x-kvroute-sim-replica).
    const index = new Map<string, number>([...ids.map((id, i) => [id, i] as const), ...(fleet?.replicas.map((r, i) => [r.id, i] as const) ?? []), ...(external ?? []).flatMap((e, i) => (e.simReplicaId !== undefined ? [[e.simReplicaId, i] as const] : []))]);
    const reqs = workload.requests;
    const records: RequestRecord[] = [];
    // Engines without counters (llama.cpp): cumulative prompt / cached tokens of finished responses.
    const fromResponses = urls.map(() => ({ queries: 0, hits: 0 }));
    const readFleetCounters = (us: readonly string[]): Promise<CacheCounters[]> =>
      external === undefined
        ? readSimCounters(us)
        : Promise.all(external.map((e, i) => (e.counters ? readEngineCounters(e) : Promise.resolve({ ...fromResponses[i] }))));
    const inflight = new Set<Promise<void>>();
    const phases: { name: string; counters: CacheCounters[] }[] = [];
    let phaseName: string | undefined;
    let phaseStart = await readFleetCounters(urls);
    let measuredStart: CacheCounters[] | undefined;
    let measuredT0 = 0;
    let shift = 0;
    let done = 0;
    const t0 = performance.now();
    const nowSim = () => (performance.now() - t0) / scale;
    const busy0 = fleet?.replicas.map((r) => r.engine.busyMs);
    const cpu0 = peer?.cpuSeconds?.();
    for (const req of reqs) {
      if (req.barrier) {
        await Promise.all([...inflight]);
        shift = Math.max(shift, nowSim() - req.atMs);
      }
      const at = req.atMs + shift;
      await sleep(at * scale - (performance.now() - t0));
      if (req.phase !== phaseName) {
        const c = await readFleetCounters(urls);
        if (phaseName !== undefined) phases.push({ name: phaseName, counters: delta(phaseStart, c) });
        phaseName = req.phase;
        phaseStart = c;
        if (measuredStart === undefined && req.phase !== 'warmup') {
          measuredStart = c;
          measuredT0 = at;
        }
      }
      const p = req.prompt();
      const rec: RequestRecord = { index: req.index, phase: req.phase, session: req.session, replica: -1, arrivalMs: nowSim(), promptTokens: 0, cachedTokens: 0, outputTokens: 0, ok: false };
      records.push(rec);
      const headers: Record<string, string> = { 'x-forwarded-for': req.clientIp, ...(req.headers ?? {}) };
      const task = streamRequest({ baseUrl: gatewayUrl ?? router!.url, api: p.api, body: requestBody(workload.model, req, p), headers, dispatcher, clock: systemClock }).then((r: StreamResult) => {
        rec.replica = r.endpoint !== undefined ? (index.get(r.endpoint) ?? -1) : -1;
        rec.ok = r.status === 200 && r.error === undefined && (r.ttftMs !== undefined || (!r.streamed && r.completionTokens !== undefined));
        if (!r.streamed) rec.streamed = false;
        if (r.ttftMs !== undefined) rec.ttftMs = r.ttftMs / scale;
        rec.e2eMs = r.e2eMs / scale;
        const engine = external?.[rec.replica]?.engine;
        const usage = engine !== undefined && r.usageChunks ? adapterFor(engine).readUsage(r.usageChunks) : undefined;
        rec.promptTokens = usage?.promptTokens ?? r.promptTokens ?? 0;
        rec.cachedTokens = usage?.cachedTokens ?? r.cachedTokens ?? 0;
        if (rec.replica >= 0 && rec.ok) {
          fromResponses[rec.replica].queries += rec.promptTokens;
          fromResponses[rec.replica].hits += rec.cachedTokens;
        }
        rec.outputTokens = r.completionTokens ?? 0;
        if (!rec.ok) rec.error = r.error ?? `status ${r.status}`;
        done++;
        o.onProgress?.(done, reqs.length);
      });
      inflight.add(task);
      void task.finally(() => inflight.delete(task));
    }
    await Promise.all([...inflight]);
    const cpu1 = peer?.cpuSeconds?.();
    if (cpu0 !== undefined && cpu1 !== undefined) {
      const cpu = cpu1 - cpu0;
      const tokens = records.reduce((a, r) => a + r.outputTokens, 0);
      notes.push(`router process CPU ${cpu.toFixed(2)} s over the run (start-up excluded) for ${records.length} requests and ${tokens} output tokens: ${((cpu * 1e6) / Math.max(1, tokens)).toFixed(0)} us per output token relayed`);
    }
    const end = await readFleetCounters(urls);
    if (phaseName !== undefined) phases.push({ name: phaseName, counters: delta(phaseStart, end) });
    let lastFinish = measuredT0;
    for (const r of records) if (r.e2eMs !== undefined && r.phase !== 'warmup') lastFinish = Math.max(lastFinish, r.arrivalMs + r.e2eMs);
    const run: EngineRun = {
      records,
      measured: delta(measuredStart ?? end, end),
      phases,
      total: end,
      ...(fleet !== undefined ? { busyMs: fleet.replicas.map((r, i) => (r.engine.busyMs - busy0![i]) / scale) } : {}),
      durationMs: lastFinish - measuredT0,
      replicaNames: ids,
      notes: [peer !== undefined ? `live engine: real HTTP through ${peer.description}; hit rates from each endpoint's own numbers` : gatewayUrl !== undefined ? `live engine: real HTTP through the gateway at ${gatewayUrl}; hit rates from each endpoint's own numbers` : external?.some((e) => !e.counters) ? 'live engine: real HTTP through the kvroute gateway; hit rates from each endpoint\'s own numbers (/metrics counter deltas, or the cached tokens of its responses where it has no counters)' : 'live engine: real HTTP through the kvroute gateway; hit rates from each endpoint\'s /metrics deltas'],
    };
    return { run, notes };
  } finally {
    await peer?.stop();
    await router?.close();
    await precise?.close();
    await fleet?.close();
    await dispatcher.close();
  }
}
