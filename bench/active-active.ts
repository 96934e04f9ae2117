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
 * - x3 sync, restart:  as x3 sync, router 2 is stopped at the middle of the run and a new one
 *                      (new id) started in its place; it replays the stream before serving
 *                      (a rolling restart: the front sends router 2's share to the others
 *                      while it drains and restarts).
 * Figures: hit rate = fleet delta of the engines' own prefix-cache counters
 * (vllm:prefix_cache_hits / queries); balance = max / mean engine busy time; for the restart, the
 * engine-reported cached share of the new router's first 20 requests vs the other routers' in
 * the same window.
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
  restart?: { newCached: number; othersCached: number; replayMs: number };
}

const redis = await startRedisServer();
let streamSeq = 0;

async function run(w: Workload, s: Setup): Promise<Result> {
  const fleet = await startFleet({ replicas, basePort: 0, model: w.model, profile: 'llama-3.1-8b', timeScale, seed });
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
  const half = Math.floor(w.requests.length / 2);
  let restartAt = -1;
  let replayMs = 0;
  const window: { fromNew: boolean; prompt: number; cached: number }[] = [];
  const t0 = performance.now();
  // Restart (rolling, as behind a load balancer): at the middle, the front stops sending to
  // router 2 (its share goes to routers 0 and 1), router 2 drains its in-flight requests and
  // stops; a new router 2 (new id) starts, replays the stream, and the front sends to it again.
  let down = false;
  const inflight2 = new Set<Promise<void>>();
  let restarting: Promise<void> | undefined;
  for (const req of w.requests) {
    if (s.restart && req.index === half) {
      down = true;
      restarting = (async () => {
        await Promise.all([...inflight2]);
        await routers[2].close();
        const r0 = performance.now();
        routers[2] = await start();
        replayMs = performance.now() - r0;
        down = false;
      })();
    }
    const wait = req.atMs * timeScale - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let slot = req.index % routers.length;
    if (slot === 2 && down) slot = req.index % 2;
    else if (s.restart && restartAt < 0 && req.index > half && !down) restartAt = req.index;
    const router = routers[slot];
    const p = req.prompt();
    const inWindow = restartAt >= 0;
    const fromNew = slot === 2;
    const task = streamRequest({ baseUrl: router.url, api: p.api, body: requestBody(w.model, req, p), headers: { 'x-forwarded-for': req.clientIp }, dispatcher, clock: systemClock }).then((r) => {
      if (r.status === 200 && r.error === undefined) ok++;
      else failed++;
      if (inWindow && window.filter((x) => x.fromNew === fromNew).length < 20) window.push({ fromNew, prompt: r.promptTokens ?? 0, cached: r.cachedTokens ?? 0 });
    });
    tasks.push(task);
    if (slot === 2) {
      inflight2.add(task);
      void task.finally(() => inflight2.delete(task));
    }
  }
  await restarting;
  await Promise.all(tasks);
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
    ...(s.restart ? { restart: { newCached: share(window.filter((x) => x.fromNew)), othersCached: share(window.filter((x) => !x.fromNew)), replayMs } } : {}),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
try {
  for (const name of workloads) {
    const w = name === 'trace'
      ? createWorkload('trace', { seed, requests, trace: { rateScale: traceRateScale } })
      : createWorkload('shared-prefix', { seed, requests, groups: 12, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 128, outputTokens: 64, rate });
    console.log(`\n### ${name}: ${w.requests.length} requests, ${replicas} replicas (llama-3.1-8b profile), time scale ${timeScale}\n`);
    console.log('| setup | ok | failed | hit rate | vs single | balance | vs single |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    let single: Result | undefined;
    const restarts: Result[] = [];
    for (const s of SETUPS) {
      const r = await run(w, s);
      single ??= r;
      if (r.restart) restarts.push(r);
      const dh = (r.hitRate - single.hitRate) * 100;
      console.log(`| ${r.setup} | ${r.ok} | ${r.failed} | ${pct(r.hitRate)} | ${dh >= 0 ? '+' : ''}${dh.toFixed(1)} pt | ${r.balance.toFixed(2)} | ${r.balance - single.balance >= 0 ? '+' : ''}${(r.balance - single.balance).toFixed(2)} |`);
    }
    for (const r of restarts) {
      console.log(`\nrestart: new router replayed and listening in ${r.restart!.replayMs.toFixed(0)} ms; cached share of its first 20 requests ${pct(r.restart!.newCached)} vs ${pct(r.restart!.othersCached)} for the other routers' first 20 in the same window`);
    }
  }
} finally {
  await redis.stop();
}
