/**
 * `kvroute demo`: a 3-replica simulated vLLM fleet and the gateway in one process on loopback,
 * running the seeds' demo (populate AI / ML / Cloud, a hit phase of similar requests, a miss
 * phase of new topics), then one multi-client workload through kvroute and through round robin.
 * Every hit rate comes from the replicas' own `/metrics` deltas.
 */
import { Agent } from 'undici';
import { systemClock } from '../core/clock.js';
import { startFleet, type SimFleet } from '../sim/index.js';
import { startRouter, type RunningRouter } from '../server/router.js';
import { streamRequest, type StreamResult } from '../client/openai-stream-client.js';
import { buildScheduler } from '../app/build-scheduler.js';
import { counterDeltas, readFleetCounters } from './fleet-metrics.js';
import { NEW_TOPICS, QUESTIONS, SEED_TOPICS, topicRequest } from './demo-workload.js';
import { runBench } from '../bench/run-bench.js';
import type { ProfileId } from '../sim/profiles.js';
import { mean, ratio } from './stats.js';
import type { DemoPhase, DemoStrategyResult, DemoSummary, ReplicaPhaseStats } from './demo-summary.js';

export interface DemoOptions {
  replicas?: number;
  model?: string;
  /** Simulator step-time profile (default llama-3.1-8b on H200). */
  profile?: string;
  /** Simulated time scale (1 = real GPU speed). */
  timeScale?: number;
  /** Words in each topic document (the shared system prompt). */
  docWords?: number;
  clients?: number;
  requestsPerClient?: number;
  groups?: number;
  seed?: number;
  /** Arrival rate (req/s) of the multi-client comparison (default 15). */
  rate?: number;
  /** Progress lines (to stderr in the CLI). */
  onProgress?: (line: string) => void;
}

const HIT_FRACTION = 0.5;

export async function runDemo(opts: DemoOptions = {}): Promise<DemoSummary> {
  const started = Date.now();
  const o = {
    replicas: 3,
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    profile: 'llama-3.1-8b',
    timeScale: 1,
    docWords: 1200,
    clients: 6,
    requestsPerClient: 6,
    groups: 6,
    seed: 7,
    rate: 15,
    ...opts,
  };
  const progress = o.onProgress ?? (() => undefined);
  const clock = systemClock;
  const dispatcher = new Agent({ connections: 64 });
  progress(`starting ${o.replicas} simulated vLLM replicas (${o.profile}, time scale ${o.timeScale}) and the kvroute gateway on 127.0.0.1`);
  // The demo's replicas run like vLLM with --enable-prompt-tokens-details, so each answer says what it hit.
  const fleet: SimFleet = await startFleet({ replicas: o.replicas, basePort: 0, model: o.model, profile: o.profile as never, timeScale: o.timeScale, seed: o.seed, enablePromptTokensDetails: true });
  const urls = fleet.replicas.map((r) => r.url);
  const ids = fleet.replicas.map((r) => r.url.replace('http://', ''));
  let router: RunningRouter | undefined;
  try {
    router = await startRouter({ endpoints: urls.map((url) => ({ url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
    const send = (body: Record<string, unknown>, headers?: Record<string, string>) =>
      streamRequest({ baseUrl: router!.url, api: 'chat', body, headers, dispatcher, clock });

    const phases: DemoPhase[] = [];
    const runPhase = async (name: string, description: string, bodies: Record<string, unknown>[]) => {
      const before = await readFleetCounters(urls);
      const results: StreamResult[] = [];
      for (let i = 0; i < bodies.length; i++) {
        results.push(await send(bodies[i]));
        progress(`  ${name}: ${i + 1}/${bodies.length}`);
      }
      const deltas = counterDeltas(before, await readFleetCounters(urls));
      phases.push(summarisePhase(name, description, ids, results, deltas));
    };

    progress('phase 1/4 populate: one request per topic (AI, ML, Cloud)');
    await runPhase('populate', 'one request per seed topic; each topic should land on its own replica', SEED_TOPICS.map((t) => topicRequest(o.model, t, QUESTIONS[0], o.docWords, 24)));
    progress('phase 2/4 hit: similar requests on the same topics');
    const hitBodies: Record<string, unknown>[] = [];
    for (let q = 1; q <= 3; q++) for (const t of SEED_TOPICS) hitBodies.push(topicRequest(o.model, t, QUESTIONS[q], o.docWords, 24));
    await runPhase('hit', 'new questions on the seed topics; should be served from the topic replica cache', hitBodies);
    progress('phase 3/4 miss: new topics');
    await runPhase('miss', 'topics never seen; should spread to the least loaded replicas', NEW_TOPICS.map((t) => topicRequest(o.model, t, QUESTIONS[0], o.docWords, 24)));
    await router.close();
    router = undefined;

    progress(`phase 4/4 multi-client: ${o.clients * o.requestsPerClient} requests over ${o.groups} shared documents at ${o.rate} req/s, kvroute vs round robin, in simulated time`);
    const strategies = await compareInVirtualTime(o);
    return {
      version: 1,
      fleet: { replicas: o.replicas, model: o.model, profile: o.profile, timeScale: o.timeScale, endpoints: ids },
      phases,
      comparison: strategies,
      comparisonSetup: {
        engine: 'virtual',
        about: COMPARISON_ABOUT,
        requests: o.clients * o.requestsPerClient,
        groups: o.groups,
        systemTokens: docTokens(o.docWords),
        ratePerSecond: o.rate,
      },
      durationSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    await router?.close();
    await fleet.close();
    await dispatcher.close();
  }
}

function replicaStats(ids: readonly string[], results: readonly StreamResult[], deltas: { queries: number; hits: number }[]): ReplicaPhaseStats[] {
  return ids.map((id, i) => ({
    endpoint: id,
    requests: results.filter((r) => r.endpoint === id).length,
    prefixQueries: deltas[i].queries,
    prefixHits: deltas[i].hits,
    hitRate: ratio(deltas[i].hits, deltas[i].queries),
  }));
}

function ttftSplit(results: readonly StreamResult[]) {
  const isHit = (r: StreamResult) => (r.cachedTokens ?? 0) >= HIT_FRACTION * (r.promptTokens ?? Infinity);
  const ok = results.filter((r) => r.status === 200 && r.ttftMs !== undefined);
  const hits = ok.filter(isHit).map((r) => r.ttftMs!);
  const misses = ok.filter((r) => !isHit(r)).map((r) => r.ttftMs!);
  return { hits: hits.length, misses: misses.length, hitTtftMs: mean(hits), missTtftMs: mean(misses) };
}

function summarisePhase(name: string, description: string, ids: readonly string[], results: StreamResult[], deltas: { queries: number; hits: number }[]): DemoPhase {
  const q = deltas.reduce((a, d) => a + d.queries, 0);
  const h = deltas.reduce((a, d) => a + d.hits, 0);
  const split = ttftSplit(results);
  return {
    name,
    description,
    requests: results.length,
    failed: results.filter((r) => r.status !== 200 || r.error !== undefined).length,
    fleetHitRate: ratio(h, q),
    meanTtftMs: mean(results.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!)),
    hitRequests: split.hits,
    missRequests: split.misses,
    hitTtftMs: split.hitTtftMs,
    missTtftMs: split.missTtftMs,
    replicas: replicaStats(ids, results, deltas),
  };
}

/** What the multi-client comparison is, printed above its table. */
const COMPARISON_ABOUT =
  'simulated time: the real scheduler and the simulated replicas, driven by the virtual bench engine (src/bench), so the comparison does not depend on how busy this machine is';

/** Approximate tokens of a topic document of `docWords` words (the simulator's tokenizer: ~2.75 per word). */
function docTokens(docWords: number): number {
  return Math.round(docWords * 2.75);
}

/**
 * The multi-client comparison: the same shared-document workload through kvroute's default
 * profile and through round robin, each on a fresh simulated fleet, in simulated time
 * (`runBench`, virtual engine). Deterministic for the seed: wall-clock noise on a loaded
 * machine cannot flip it.
 */
async function compareInVirtualTime(o: { replicas: number; model: string; profile: string; docWords: number; clients: number; requestsPerClient: number; groups: number; seed: number; rate: number }): Promise<DemoStrategyResult[]> {
  const requests = o.clients * o.requestsPerClient;
  const report = await runBench({
    workload: 'shared-prefix',
    workloadOptions: {
      model: o.model,
      groups: o.groups,
      promptsPerGroup: Math.ceil(requests / o.groups),
      systemTokens: docTokens(o.docWords),
      questionTokens: 16,
      outputTokens: 32,
      requests,
      rate: o.rate,
      seed: o.seed,
    },
    strategies: ['kvroute', 'round-robin'],
    engine: 'virtual',
    replicas: o.replicas,
    profile: o.profile as ProfileId,
    seed: o.seed,
    // The gateway in this demo runs without KV events: compare the same (approximate) routing.
    precise: async () => undefined,
  });
  return report.strategies.map((s) => ({
    strategy: s.name === 'kvroute' ? 'kvroute (default)' : s.name,
    requests: s.requests,
    failed: s.failed,
    fleetHitRate: s.hitRate,
    ttftMeanMs: s.ttftMs.mean ?? NaN,
    ttftP50Ms: s.ttftMs.p50 ?? NaN,
    ttftP90Ms: s.ttftMs.p90 ?? NaN,
    outputTokensPerSecond: s.outputTokensPerSecond,
    wallSeconds: s.durationS,
    concentration: s.concentration,
    replicas: s.replicas.map((r) => ({ endpoint: r.name, requests: r.requests, prefixQueries: r.prefixQueries, prefixHits: r.prefixHits, hitRate: r.hitRate })),
  }));
}
