/**
 * Active-active router replicas (src/sync, docs/active-active.md) vs one router, live and as
 * deployed: every gateway is its own `kvroute serve` process (default profile), a real
 * redis-server carries the sync stream, a fresh simulated fleet per run with every engine in its
 * own process (bench/fleet-process.ts, which also reports the engines' busy time), real HTTP
 * from an open-loop client in this process.
 *
 *   node dist/bench/active-active.js [--workload shared-prefix|trace] [--seeds 1,2,3,4,5]
 *     [--requests 300] [--replicas 4] [--time-scale 0.1] [--rate 8] [--trace-rate-scale 1]
 *     [--mode process|in-process] [--restart-at 0] [--scrape-interval-ms 200] [--engines-per-process 1]
 *     [--setups single,x3-sync,x3-no-sync,x3-restart] [--per-engine]
 *   node dist/bench/active-active.js --hot-path       (bench/active-active-hot-path.ts: CPU per
 *     request with and without sync, CPU to apply a remote pick, pick -> applied delay)
 *
 * Setups, each on a fresh fleet; for every seed (workload seed = fleet seed) all setups run on
 * the same requests, so differences are paired:
 * - single:      one router gets every request;
 * - x3-sync:     three routers sharing one sync stream; request i goes to router i mod 3 (the
 *                round-robin front);
 * - x3-no-sync:  the same three routers without sync (the reference: what sync fixes);
 * - x3-restart:  as x3-sync; at request `--restart-at` x N (default 0: with the first request;
 *                a gateway process takes 1-4 s to start on a busy 2-core machine, so it joins
 *                mid-run) a new router (new id) starts, replays the stream and takes router 2's
 *                place in the front once it is ready, while the old router 2 finishes its
 *                in-flight requests and stops with SIGTERM (a rolling update).
 * Figures: hit rate = fleet delta of the engines' own prefix-cache counters
 * (vllm:prefix_cache_hits / queries); balance = max / mean engine busy time; sync lag = the
 * routers' kvroute_sync_lag_seconds sampled every 250 ms; for the restart, the engine-reported
 * cached share of the new router's first 20 requests minus the other routers' first 20 in the
 * same window, and (with x3-sync in the run) minus the same 20 requests' share through x3-sync
 * of the same seed (same rows of the workload, no restart: the fair comparison when the rows'
 * reuse differs, as on a trace). Per setup: the mean paired difference against single over the seeds with its 95 %
 * Student-t interval (src/bench/paired.ts); the target (issue 15) is met on an interval, not on
 * one run: hit rate lower bound >= -2 points, balance upper bound <= +0.1.
 * Every gateway scrapes /metrics every `--scrape-interval-ms` (default 200, not the gateway's 50):
 * the simulated engines share one process, so three gateways' scraping at 50 ms starved it on a
 * busy machine (their /health went unanswered for 2.5 s and the gateways answered 503), which
 * real engines, each on its own host, would not suffer. Same setting in every setup.
 * `--per-engine` prints each run's per-engine busy time, prompt tokens queried and hit (where the
 * balance comes from: which engine got which groups).
 * `--mode in-process` runs the gateways and the fleet in this process instead (the former set-up).
 */
import { loadavg } from 'node:os';
import { Agent, request } from 'undici';
import { systemClock } from '../src/core/clock.js';
import { buildScheduler } from '../src/app/build-scheduler.js';
import { streamRequest } from '../src/client/openai-stream-client.js';
import { readFleetCounters } from '../src/demo/fleet-metrics.js';
import { requestBody } from '../src/bench/prompt.js';
import { pairedInterval, type PairedInterval } from '../src/bench/paired.js';
import { createWorkload } from '../src/bench/workloads.js';
import type { Workload } from '../src/bench/types.js';
import { startRouter } from '../src/server/router.js';
import { startFleet } from '../src/sim/fleet.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { startChildGateway } from '../test/helpers/child-gateway.js';
import { startFleetProcess } from './fleet-process.js';
import { hotPath, syncDelay } from './active-active-hot-path.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const workloadName = arg('workload', 'shared-prefix');
const seedsArg = arg('seeds', '1,2,3,4,5');
const seeds = seedsArg.includes(',') ? seedsArg.split(',').map(Number) : Array.from({ length: Number(seedsArg) }, (_, i) => i + 1);
const requests = Number(arg('requests', '300'));
const replicas = Number(arg('replicas', '4'));
const timeScale = Number(arg('time-scale', '0.1'));
const rate = Number(arg('rate', '8'));
const traceRateScale = Number(arg('trace-rate-scale', '1'));
const mode = arg('mode', 'process');
const restartAt = Number(arg('restart-at', '0'));
const scrapeMs = Number(arg('scrape-interval-ms', '200'));
const enginesPerProcess = Number(arg('engines-per-process', '1'));
const perEngine = process.argv.includes('--per-engine');
const SETUPS = [
  { name: 'single', routers: 1, sync: false, restart: false },
  { name: 'x3-sync', routers: 3, sync: true, restart: false },
  { name: 'x3-no-sync', routers: 3, sync: false, restart: false },
  { name: 'x3-restart', routers: 3, sync: true, restart: true },
] as const;
type Setup = (typeof SETUPS)[number];
const setups = arg('setups', SETUPS.map((s) => s.name).join(',')).split(',').map((n) => {
  const s = SETUPS.find((x) => x.name === n);
  if (s === undefined) throw new Error(`--setups: unknown setup "${n}" (one of ${SETUPS.map((x) => x.name).join(', ')})`);
  return s;
});
if (!['process', 'in-process'].includes(mode)) throw new Error(`--mode must be process or in-process, got ${mode}`);
if (!['shared-prefix', 'trace'].includes(workloadName)) throw new Error(`--workload must be shared-prefix or trace, got ${workloadName}`);
if (seeds.some((s) => !Number.isInteger(s)) || !(requests > 0) || !(replicas > 0) || !(timeScale > 0)) throw new Error('--seeds, --requests, --replicas and --time-scale must be positive numbers');
if (!(restartAt >= 0 && restartAt < 1)) throw new Error(`--restart-at must be a fraction of the requests in [0, 1), got ${restartAt}`);
if (setups[0]?.name !== 'single') throw new Error('--setups must start with single (the baseline of the paired differences)');

/** A gateway of a run, in its own process or in this one. */
interface Gw {
  url: string;
  /** Resolves once every endpoint is healthy for this gateway (its /readyz), as a load balancer's readiness check would wait. */
  ready(): Promise<void>;
  /** The sync lag it reports now, ms (undefined without sync). */
  lagMs(): Promise<number | undefined>;
  close(): Promise<void>;
}

interface Result {
  ok: number;
  failed: number;
  hitRate: number;
  balance: number;
  lagMs?: { mean: number; p99: number };
  restart?: { newCached: number; othersCached: number; replayMs: number; newN: number; othersN: number; joinedAt: number; newIndices: number[] };
  /** Per request index: prompt and engine-reported cached tokens (successful requests). */
  perRequest: Map<number, { prompt: number; cached: number }>;
  load: [number, number];
}

// Stopped with a signal: exit, so the helpers' exit hook kills the gateways and redis-server.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
const redis = await startRedisServer();
let streamSeq = 0;

async function startGw(urls: string[], sync: { stream: string; id: string } | undefined): Promise<Gw> {
  if (mode === 'process') {
    const g = await startChildGateway(urls.map((u) => u.replace(/^http:\/\//, '')).join(','), [
      '--trust-forwarded-for', '--scrape-interval-ms', String(scrapeMs), ...(sync !== undefined ? ['--sync-redis', redis.url, '--sync-stream', sync.stream, '--router-id', sync.id] : []),
    ], 120_000);
    return {
      url: g.url,
      ready: () => until(async () => {
        const res = await request(`${g.adminUrl}/readyz`);
        return ((await res.body.json()) as { healthy?: number }).healthy === urls.length;
      }),
      async lagMs() {
        if (sync === undefined) return undefined;
        const res = await request(`${g.adminUrl}/metrics`);
        const m = /^kvroute_sync_lag_seconds (\S+)$/m.exec(await res.body.text());
        return m !== null ? 1_000 * Number(m[1]) : undefined;
      },
      close: () => g.stop('SIGTERM'),
    };
  }
  const r = await startRouter({
    endpoints: urls.map((url) => ({ url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false,
    trustForwardedFor: true, scrapeIntervalMs: scrapeMs, clock: systemClock, ...(sync !== undefined ? { sync: { url: redis.url, stream: sync.stream, routerId: sync.id } } : {}),
  });
  return { url: r.url, ready: () => until(async () => r.pool.healthyCount() === urls.length), lagMs: async () => r.sync?.stats().lagMs, close: () => r.close() };
}

/** Polls `pred` every 50 ms until true (60 s at most). */
async function until(pred: () => Promise<boolean>): Promise<void> {
  const end = performance.now() + 60_000;
  while (!(await pred().catch(() => false))) {
    if (performance.now() > end) throw new Error('a gateway did not see every endpoint healthy within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(w: Workload, s: Setup, seed: number): Promise<Result> {
  const load0 = loadavg()[0];
  const fleetOpts = { replicas, basePort: 0, model: w.model, profile: 'llama-3.1-8b' as const, timeScale, seed, enablePromptTokensDetails: true };
  // As deployed, every engine in its own process (`--engines-per-process 1`, the default):
  // simulated engines sharing one process starved each other's /health under three gateways'
  // probes. A larger value trades that for fewer processes on a small machine.
  const fleet = mode === 'process' ? await (async () => {
    const parts = await Promise.all(Array.from({ length: Math.ceil(replicas / enginesPerProcess) }, (_, i) => startFleetProcess({ ...fleetOpts, replicas: Math.min(enginesPerProcess, replicas - i * enginesPerProcess) })));
    return {
      urls: parts.flatMap((p) => p.urls),
      busyMs: async () => (await Promise.all(parts.map((p) => p.busyMs()))).flat(),
      stop: async () => void (await Promise.all(parts.map((p) => p.stop()))),
    };
  })() : await (async () => {
    const f = await startFleet(fleetOpts);
    return { urls: f.replicas.map((r) => r.url), busyMs: async () => f.replicas.map((r) => r.engine.busyMs), stop: () => f.close() };
  })();
  const urls = fleet.urls;
  const stream = `bench:sync:${process.pid}:${++streamSeq}`;
  let idSeq = 0;
  const start = async () => {
    const g = await startGw(urls, s.sync ? { stream, id: `r${idSeq++}` } : undefined);
    await g.ready();
    return g;
  };
  const routers = await Promise.all(Array.from({ length: s.routers }, () => start()));
  const dispatcher = new Agent({ connections: 1024, keepAliveTimeout: 30_000 });
  const before = await readFleetCounters(urls);
  const busy0 = await fleet.busyMs();
  const tasks: Promise<void>[] = [];
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const restartIndex = Math.floor(w.requests.length * restartAt);
  let joinedAt = -1;
  let replayMs = 0;
  const window: { fromNew: boolean; prompt: number; cached: number; index: number }[] = [];
  const perRequest = new Map<number, { prompt: number; cached: number }>();
  const lags: number[] = [];
  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return;
    sampling = true;
    void Promise.all(routers.map((r) => r.lagMs().catch(() => undefined))).then((xs) => {
      for (const x of xs) if (x !== undefined) lags.push(x);
      sampling = false;
    });
  }, 250);
  const inflight2 = new Set<Promise<void>>();
  let retiring: Promise<void> | undefined;
  let lastIndex = -1;
  const t0 = performance.now();
  for (const req of w.requests) {
    if (s.restart && req.index === restartIndex) {
      // Started in the background: the front keeps sending to the old router 2 until the new one
      // is ready (it replays the stream before it listens, then sees every endpoint healthy).
      const r0 = performance.now();
      retiring = start().catch((err: Error) => {
        console.error(`seed ${seed} ${s.name}: the new router did not start: ${err.message.slice(0, 200)}`);
        return undefined;
      }).then(async (fresh) => {
        if (fresh === undefined) return;
        replayMs = performance.now() - r0;
        const old = routers[2];
        routers[2] = fresh;
        joinedAt = lastIndex + 1;
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
    const p = req.prompt();
    const inWindow = joinedAt >= 0 && req.index >= joinedAt;
    const fromNew = slot === 2;
    const task = streamRequest({ baseUrl: routers[slot].url, api: p.api, body: requestBody(w.model, req, p), headers: { 'x-forwarded-for': req.clientIp }, dispatcher, clock: systemClock }).then((r) => {
      if (r.status === 200 && r.error === undefined) {
        ok++;
        perRequest.set(req.index, { prompt: r.promptTokens ?? 0, cached: r.cachedTokens ?? 0 });
      } else if (failed++ === 0) firstError = `${r.status} ${r.error ?? ''}`.slice(0, 300);
      if (inWindow && window.filter((x) => x.fromNew === fromNew).length < 20) window.push({ fromNew, prompt: r.promptTokens ?? 0, cached: r.cachedTokens ?? 0, index: req.index });
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
  const busy = (await fleet.busyMs()).map((b, i) => b - busy0[i]);
  const mean = busy.reduce((a, b) => a + b, 0) / busy.length;
  if (perEngine) console.log(`per engine, seed ${seed} ${s.name}: busy ms ${busy.map((b) => b.toFixed(0)).join(' ')} queries ${after.map((c, i) => c.queries - before[i].queries).join(' ')} hits ${after.map((c, i) => c.hits - before[i].hits).join(' ')}`);
  const share = (xs: typeof window) => {
    const pt = xs.reduce((a, x) => a + x.prompt, 0);
    return pt > 0 ? xs.reduce((a, x) => a + x.cached, 0) / pt : 0;
  };
  await Promise.all(routers.map((r) => r.close()));
  await dispatcher.close();
  await fleet.stop();
  const sorted = [...lags].sort((x, y) => x - y);
  if (firstError !== undefined) console.error(`seed ${seed} ${s.name}: ${failed} failed; first: ${firstError}`);
  return {
    perRequest, ok, failed, hitRate: q > 0 ? h / q : 0, balance: mean > 0 ? Math.max(...busy) / mean : 1, load: [load0, loadavg()[0]],
    ...(lags.length > 0 ? { lagMs: { mean: lags.reduce((a, b) => a + b, 0) / lags.length, p99: sorted[Math.floor(sorted.length * 0.99)] } } : {}),
    ...(s.restart ? { restart: {
      newCached: share(window.filter((x) => x.fromNew)), othersCached: share(window.filter((x) => !x.fromNew)), replayMs,
      newN: window.filter((x) => x.fromNew).length, othersN: window.filter((x) => !x.fromNew).length, joinedAt,
      newIndices: window.filter((x) => x.fromNew).map((x) => x.index),
    } } : {}),
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const sign = (x: number, d: number) => `${x >= 0 ? '+' : ''}${x.toFixed(d)}`;
const iv = (x: PairedInterval, d: number, unit = '') => `${sign(x.mean, d)}${unit} [${sign(x.lo, d)}, ${sign(x.hi, d)}]`;

try {
  if (process.argv.includes('--hot-path')) {
    await hotPath({ redisUrl: redis.url, replicas, seed: seeds[0], rate });
    await syncDelay({ redisUrl: redis.url, seed: seeds[0] });
  } else {
    const t0 = performance.now();
    const byName = new Map<string, Result[]>(setups.map((s) => [s.name, []]));
    console.log(`\n### ${workloadName}: ${requests} requests x seeds ${seeds.join(',')}, ${replicas} replicas (llama-3.1-8b profile), time scale ${timeScale}, gateways ${mode === 'process' ? 'as separate kvroute serve processes' : 'in the bench process'}\n`);
    console.log('| seed | setup | ok | failed | hit rate | balance | sync lag mean / p99 | restart: new vs others cached (n), joined at request, started in | load avg 1 min start / end |');
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const seed of seeds) {
      const w = workloadName === 'trace'
        ? createWorkload('trace', { seed, requests, trace: { rateScale: traceRateScale } })
        : createWorkload('shared-prefix', { seed, requests, groups: 12, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 128, outputTokens: 64, rate });
      for (const s of setups) {
        const r = await run(w, s, seed);
        byName.get(s.name)!.push(r);
        const x = r.restart;
        console.log(`| ${seed} | ${s.name} | ${r.ok} | ${r.failed} | ${pct(r.hitRate)} | ${r.balance.toFixed(2)} | ${r.lagMs !== undefined ? `${r.lagMs.mean.toFixed(1)} / ${r.lagMs.p99.toFixed(0)} ms` : '-'} | ${x !== undefined ? `${pct(x.newCached)} (${x.newN}) vs ${pct(x.othersCached)} (${x.othersN}), #${x.joinedAt}, ${x.replayMs.toFixed(0)} ms` : '-'} | ${r.load[0].toFixed(1)} / ${r.load[1].toFixed(1)} |`);
      }
    }
    const single = byName.get('single')!;
    console.log(`\npaired differences against single over ${seeds.length} seeds: mean [95 % interval]; target: hit rate lower bound >= -2 pt and balance upper bound <= +0.10\n`);
    console.log('| setup | hit rate (mean) | vs single, pt | balance (mean) | vs single | target |');
    console.log('|---|---:|---:|---:|---:|---|');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const s of setups) {
      const rs = byName.get(s.name)!;
      if (s.name === 'single') {
        console.log(`| single | ${pct(mean(rs.map((r) => r.hitRate)))} | | ${mean(rs.map((r) => r.balance)).toFixed(2)} | | baseline |`);
        continue;
      }
      // A pair counts only when both runs failed the same requests (e.g. the trace's one over-long
      // prompt): 503s from a starved machine change what the engines computed.
      const valid = rs.flatMap((r, i) => (r.failed === single[i].failed ? [[r, single[i]] as const] : []));
      if (valid.length < rs.length) console.log(`| ${s.name} | ${rs.length - valid.length} of ${rs.length} seeds left out: failed requests differ from single's |  |  |  |  |`);
      if (valid.length === 0) continue;
      const dh = pairedInterval(valid.map(([r, b]) => 100 * (r.hitRate - b.hitRate)));
      const db = pairedInterval(valid.map(([r, b]) => r.balance - b.balance));
      const met = dh.lo >= -2 && db.hi <= 0.1;
      const verdict = s.sync ? (met ? 'met' : `not met (${[dh.lo < -2 ? 'hit rate' : '', db.hi > 0.1 ? 'balance' : ''].filter(Boolean).join(', ')})`) : 'reference (no sync)';
      console.log(`| ${s.name} (${valid.length} seeds) | ${pct(mean(valid.map(([r]) => r.hitRate)))} | ${iv(dh, 1)} | ${mean(valid.map(([r]) => r.balance)).toFixed(2)} | ${iv(db, 2)} | ${verdict} |`);
    }
    const restarts = byName.get('x3-restart') ?? [];
    if (restarts.some((r) => r.restart!.newN === 0)) console.log('\nrestart: in some runs the new router joined too late to serve any request; those runs give no restart figure (raise --requests)');
    if (restarts.length > 0) {
      const d = pairedInterval(restarts.filter((r) => r.restart!.newN > 0).map((r) => 100 * (r.restart!.newCached - r.restart!.othersCached)));
      // The same requests through the synced trio without a restart (same seed, so the same
      // trace rows): the window above compares different requests, whose reuse can differ.
      const synced = byName.get('x3-sync');
      if (synced !== undefined) {
        const shareOf = (m: Result['perRequest'], idx: number[]) => {
          let p = 0;
          let c = 0;
          for (const i of idx) {
            const x = m.get(i);
            if (x !== undefined) {
              p += x.prompt;
              c += x.cached;
            }
          }
          return p > 0 ? c / p : 0;
        };
        const pairs = restarts.flatMap((r, i) => (r.restart!.newN > 0 && synced[i] !== undefined ? [[shareOf(r.perRequest, r.restart!.newIndices), shareOf(synced[i].perRequest, r.restart!.newIndices)] as const] : []));
        const ds = pairedInterval(pairs.map(([a, b]) => 100 * (a - b)));
        console.log(`\nrestart: the new router's first ~20 requests vs the SAME requests through x3-sync (same seed, no restart), engine-reported cached share of prompt tokens, difference ${iv(ds, 1, ' pt')} over ${ds.n} seeds (new ${pct(mean(pairs.map(([a]) => a)))}, same requests without restart ${pct(mean(pairs.map(([, b]) => b)))})`);
      }
      console.log(`\nrestart: the new router's first ~20 requests vs the other routers' first ~20 in the same window, engine-reported cached share of prompt tokens, difference ${iv(d, 1, ' pt')} over ${d.n} seeds (new mean ${pct(mean(restarts.map((r) => r.restart!.newCached)))}, others ${pct(mean(restarts.map((r) => r.restart!.othersCached)))}); started (process start, stream replay, endpoints healthy) and ready in ${Math.min(...restarts.map((r) => r.restart!.replayMs)).toFixed(0)}-${Math.max(...restarts.map((r) => r.restart!.replayMs)).toFixed(0)} ms`);
    }
    console.log(`\nwall time ${((performance.now() - t0) / 1_000).toFixed(0)} s`);
  }
} finally {
  await redis.stop();
}
