/**
 * Active-active router replicas (src/sync, docs/active-active.md) vs one router, live: real HTTP
 * through real kvroute gateways (default profile) to a fresh simulated fleet per setup, a real
 * redis-server for the sync stream.
 *
 *   node dist/bench/active-active.js [--requests 300] [--replicas 4] [--time-scale 0.1]
 *     [--workloads shared-prefix,trace] [--rate 8] [--trace-rate-scale 1] [--seed 1]
 *
 * Setups, each on a fresh fleet (same seed):
 * - single:            one router gets every request;
 * - x3 sync:           three routers sharing one sync stream; request i goes to router i mod 3
 *                      (the round-robin front);
 * - x3 no sync:        the same three routers without sync (the reference: what sync fixes);
 * - x3 sync, restart:  as x3 sync; at a third of the run a new router (new id) starts,
 *                      replays the stream and takes router 2's place in the front, while the
 *                      old router 2 finishes its in-flight requests and stops (a rolling update).
 * Figures: hit rate = fleet delta of the engines' own prefix-cache counters
 * (vllm:prefix_cache_hits / queries); balance = max / mean engine busy time; for the restart, the
 * engine-reported cached share of the new router's first 20 requests vs the other routers' in
 * the same window.
 *
 * `--hot-path` instead measures what sync adds to the scheduling hot path, without HTTP: CPU per
 * request of schedule + first token + completion on the default scheduler with and without a
 * RouterSync observer (interleaved rounds, median), and the CPU to apply one remote pick
 * (parse + decode keys + applyRemotePick) on the receiving side.
 */
import { Agent } from 'undici';
import { systemClock } from '../src/core/clock.js';
import { buildScheduler } from '../src/app/build-scheduler.js';
import { streamRequest } from '../src/client/openai-stream-client.js';
import { readFleetCounters } from '../src/demo/fleet-metrics.js';
import { requestBody } from '../src/bench/prompt.js';
import { createWorkload } from '../src/bench/workloads.js';
import type { Workload } from '../src/bench/types.js';
import { startRouter, type RunningRouter } from '../src/server/router.js';
import { startFleet } from '../src/sim/fleet.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { toInferenceRequest } from '../src/bench/prompt.js';
import { EndpointPool } from '../src/datalayer/endpoint-pool.js';
import type { KvrouteScheduler } from '../src/scheduling/scheduler.js';
import { RouterSync } from '../src/sync/router-sync.js';
import { decodeKeys, encodeKeys, parseBatch } from '../src/sync/sync-records.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const requests = Number(arg('requests', '300'));
const replicas = Number(arg('replicas', '4'));
const timeScale = Number(arg('time-scale', '0.1'));
const workloads = arg('workloads', 'shared-prefix,trace').split(',');
const rate = Number(arg('rate', '8'));
const traceRateScale = Number(arg('trace-rate-scale', '1'));
const seed = Number(arg('seed', '1'));

type Setup = { name: string; routers: number; sync: boolean; restart: boolean };
const SETUPS: Setup[] = [
  { name: 'single', routers: 1, sync: false, restart: false },
  { name: 'x3 sync', routers: 3, sync: true, restart: false },
  { name: 'x3 no sync', routers: 3, sync: false, restart: false },
  { name: 'x3 sync, restart', routers: 3, sync: true, restart: true },
];

interface Result {
  setup: string;
  ok: number;
  failed: number;
  hitRate: number;
  balance: number;
  lagMs?: { mean: number; p99: number };
  restart?: { newCached: number; othersCached: number; replayMs: number; newN: number; othersN: number; newHits: number };
}

const redis = await startRedisServer();
let streamSeq = 0;

async function run(w: Workload, s: Setup): Promise<Result> {
  const fleet = await startFleet({ replicas, basePort: 0, model: w.model, profile: 'llama-3.1-8b', timeScale, seed, enablePromptTokensDetails: true });
  const urls = fleet.replicas.map((r) => r.url);
  const stream = `bench:sync:${process.pid}:${++streamSeq}`;
  let idSeq = 0;
  const start = (): Promise<RunningRouter> => startRouter({
    endpoints: urls.map((url) => ({ url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false,
    trustForwardedFor: true, clock: systemClock,
    ...(s.sync ? { sync: { url: redis.url, stream, routerId: `r${idSeq++}` } } : {}),
  });
  const routers: RunningRouter[] = [];
  for (let i = 0; i < s.routers; i++) routers.push(await start());
  const dispatcher = new Agent({ connections: 1024, keepAliveTimeout: 30_000 });
  const before = await readFleetCounters(urls);
  const busy0 = fleet.replicas.map((r) => r.engine.busyMs);
  const tasks: Promise<void>[] = [];
  let ok = 0;
  let failed = 0;
  const restartIndex = Math.floor(w.requests.length / 3);
  let restartAt = -1;
  let replayMs = 0;
  const window: { fromNew: boolean; prompt: number; cached: number }[] = [];
  const t0 = performance.now();
  // Sync lag (age of the newest entry each router applied), sampled every 50 ms.
  const lags: number[] = [];
  const sampler = setInterval(() => {
    for (const r of routers) if (r.sync !== undefined) lags.push(r.sync.stats().lagMs);
  }, 50);
  // Restart (rolling, as a Deployment update with surge): at a third of the run a new router 2
  // (new id) starts, replays the stream and takes router 2's slot in the front; the old one
  // finishes its in-flight requests and stops.
  const inflight2 = new Set<Promise<void>>();
  let retiring: Promise<void> | undefined;
  let lastIndex = -1;
  for (const req of w.requests) {
    if (s.restart && req.index === restartIndex) {
      // Started in the background: the front keeps sending to the old router 2 until the new
      // one is ready (replayed and listening), as a load balancer's readiness check would.
      const r0 = performance.now();
      retiring = start().then(async (fresh) => {
        replayMs = performance.now() - r0;
        const old = routers[2];
        routers[2] = fresh;
        restartAt = lastIndex + 1;
        const draining = [...inflight2];
        inflight2.clear();
        await Promise.all(draining);
        await old.close();
      });
    }
    lastIndex = req.index;
    const wait = req.atMs * timeScale - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const slot = req.index % routers.length;
    const router = routers[slot];
    const p = req.prompt();
    const inWindow = restartAt >= 0 && req.index >= restartAt;
    const fromNew = slot === 2;
    const task = streamRequest({ baseUrl: router.url, api: p.api, body: requestBody(w.model, req, p), headers: { 'x-forwarded-for': req.clientIp }, dispatcher, clock: systemClock }).then((r) => {
      if (r.status === 200 && r.error === undefined) ok++;
      else failed++;
      if (inWindow && window.filter((x) => x.fromNew === fromNew).length < 20) window.push({ fromNew, prompt: r.promptTokens ?? 0, cached: r.cachedTokens ?? 0 });
    });
    tasks.push(task);
    if (slot === 2) inflight2.add(task);
  }
  await retiring;
  await Promise.all(tasks);
  clearInterval(sampler);
  const after = await readFleetCounters(urls);
  const q = after.reduce((a, c, i) => a + c.queries - before[i].queries, 0);
  const h = after.reduce((a, c, i) => a + c.hits - before[i].hits, 0);
  const busy = fleet.replicas.map((r, i) => r.engine.busyMs - busy0[i]);
  const mean = busy.reduce((a, b) => a + b, 0) / busy.length;
  const share = (xs: typeof window) => {
    const pt = xs.reduce((a, x) => a + x.prompt, 0);
    return pt > 0 ? xs.reduce((a, x) => a + x.cached, 0) / pt : 0;
  };
  for (const r of routers) await r.close();
  await dispatcher.close();
  await fleet.close();
  return {
    setup: s.name, ok, failed, hitRate: q > 0 ? h / q : 0, balance: mean > 0 ? Math.max(...busy) / mean : 1,
    ...(lags.length > 0 ? { lagMs: { mean: lags.reduce((a, b) => a + b, 0) / lags.length, p99: [...lags].sort((x, y) => x - y)[Math.floor(lags.length * 0.99)] } } : {}),
    ...(s.restart ? { restart: {
      newCached: share(window.filter((x) => x.fromNew)), othersCached: share(window.filter((x) => !x.fromNew)), replayMs,
      newN: window.filter((x) => x.fromNew).length, othersN: window.filter((x) => !x.fromNew).length, newHits: window.filter((x) => x.fromNew && x.cached > 0).length,
    } } : {}),
  };
}

async function hotPath(): Promise<void> {
  const n = 2_000;
  const w = createWorkload('shared-prefix', { seed, requests: n, groups: 12, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 128, outputTokens: 64, rate });
  const pool = new EndpointPool(Array.from({ length: replicas }, (_, i) => ({ url: `http://127.0.0.1:${20_000 + i}` })));
  const eps = pool.all();
  const plain = buildScheduler({ preset: 'default' });
  const synced = buildScheduler({ preset: 'default' });
  const sync = await RouterSync.start({ url: redis.url, stream: `bench:hot:${process.pid}`, routerId: 'hot', scheduler: synced, endpoints: pool, clock: systemClock });
  const prompts = w.requests.map((r) => ({ r, p: r.prompt() }));
  const once = async (sched: KvrouteScheduler, tag: string): Promise<number> => {
    const c0 = process.cpuUsage();
    for (const { r, p } of prompts) {
      const req = toInferenceRequest(w.model, r, p, 0);
      (req as { id: string }).id = `${tag}-${r.index}`;
      const res = await sched.schedule(req, eps);
      sched.onFirstToken(req, res.endpoint);
      sched.onComplete(req, res.endpoint, { ok: true, status: 200 });
    }
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  const a: number[] = [];
  const b: number[] = [];
  for (let round = 0; round < 5; round++) {
    a.push(await once(plain, `p${round}`));
    b.push(await once(synced, `s${round}`));
    await new Promise((r) => setTimeout(r, 50));
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  // Receiving side: one remote pick's parse + key decode + application.
  const keys = synced.pickKeysOf(toInferenceRequest(w.model, prompts[0].r, prompts[0].p, 0)) ?? { scheme: 'text/64/256', keys: new Float64Array(136) };
  const sample = await (async () => {
    const req = toInferenceRequest(w.model, prompts[1].r, prompts[1].p, 0);
    await plain.schedule(req, eps);
    return plain.pickKeysOf(req) ?? keys;
  })();
  const body = JSON.stringify([{ t: 'p', q: 'x', e: eps[0].id, w: 100, c: 0, s: sample.scheme, k: encodeKeys(sample.keys) }, { t: 'f', q: 'x', e: eps[0].id }, { t: 'c', q: 'x', e: eps[0].id }]);
  const m = 5_000;
  const c0 = process.cpuUsage();
  for (let i = 0; i < m; i++) {
    const { records } = parseBatch(body);
    const r = records[0] as { e: string; s: string; k: string; w: number };
    plain.applyRemotePick({ endpoint: pool.get(r.e)!, keys: { scheme: r.s, keys: decodeKeys(r.k)! }, uncachedTokens: r.w, cold: false, now: 0 });
  }
  const c = process.cpuUsage(c0);
  const st = sync.stats();
  await sync.close();
  console.log(`\n### sync on the hot path (${n} shared-prefix requests x 5 rounds, default profile, ${replicas} endpoints, no HTTP)\n`);
  console.log('| | CPU per request (median of 5) |');
  console.log('|---|---:|');
  console.log(`| schedule + first token + complete, no sync | ${med(a).toFixed(1)} µs |`);
  console.log(`| same with RouterSync publishing | ${med(b).toFixed(1)} µs (+${(med(b) - med(a)).toFixed(1)} µs, x${(med(b) / med(a)).toFixed(2)}) |`);
  console.log(`| apply one remote pick (${sample.keys.length} keys) + first token + completion records | ${(((c.user + c.system) / m)).toFixed(1)} µs |`);
  console.log(`\nrecords sent ${st.sent}, dropped ${st.dropped}`);
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
try {
  if (process.argv.includes('--hot-path')) {
    await hotPath();
    workloads.length = 0;
  }
  for (const name of workloads) {
    const w = name === 'trace'
      ? createWorkload('trace', { seed, requests, trace: { rateScale: traceRateScale } })
      : createWorkload('shared-prefix', { seed, requests, groups: 12, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 128, outputTokens: 64, rate });
    console.log(`\n### ${name}: ${w.requests.length} requests, ${replicas} replicas (llama-3.1-8b profile), time scale ${timeScale}\n`);
    console.log('| setup | ok | failed | hit rate | vs single | balance | vs single | sync lag mean / p99 |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    let single: Result | undefined;
    const restarts: Result[] = [];
    for (const s of SETUPS) {
      const r = await run(w, s);
      single ??= r;
      if (r.restart) restarts.push(r);
      const dh = (r.hitRate - single.hitRate) * 100;
      console.log(`| ${r.setup} | ${r.ok} | ${r.failed} | ${pct(r.hitRate)} | ${dh >= 0 ? '+' : ''}${dh.toFixed(1)} pt | ${r.balance.toFixed(2)} | ${r.balance - single.balance >= 0 ? '+' : ''}${(r.balance - single.balance).toFixed(2)} | ${r.lagMs !== undefined ? `${r.lagMs.mean.toFixed(1)} / ${r.lagMs.p99.toFixed(0)} ms` : '-'} |`);
    }
    for (const r of restarts) {
      const x = r.restart!;
      console.log(`\nrestart: new router replayed and listening in ${x.replayMs.toFixed(0)} ms; engine-reported cached share of its first ${x.newN} requests ${pct(x.newCached)} (${x.newHits} of them hit) vs ${pct(x.othersCached)} for the other routers' first ${x.othersN} in the same window`);
    }
  }
} finally {
  await redis.stop();
}
