/**
 * What router sync adds to the scheduling hot path, without HTTP (`node dist/bench/active-active.js
 * --hot-path`): CPU per request of schedule + first token + completion on the default scheduler
 * with and without a RouterSync observer publishing to a real redis-server (interleaved rounds,
 * median; each request in its own event-loop turn, as requests are in a gateway, so publishing
 * runs as it would there), for three ways of publishing side by side (src/sync/sync-publisher.ts):
 * leading-edge 5 ms (the default), flushMs 0 (at once unless an XADD is in flight) and the 5 ms
 * timer of before; and the CPU to apply one remote pick (parse + decode keys + applyRemotePick) on the
 * receiving side. Then the sync delay itself: pick on router A -> applied on router B (two
 * RouterSyncs in this process on the real redis-server, one pick every 5 ms, 100 per round,
 * rounds alternating the three ways of publishing), p50 / p90 / max.
 */
import { systemClock } from '../src/core/clock.js';
import { buildScheduler } from '../src/app/build-scheduler.js';
import { createWorkload } from '../src/bench/workloads.js';
import { toInferenceRequest } from '../src/bench/prompt.js';
import { EndpointPool } from '../src/datalayer/endpoint-pool.js';
import type { KvrouteScheduler } from '../src/scheduling/scheduler.js';
import { RouterSync, type RouterSyncOptions } from '../src/sync/router-sync.js';
import { decodeKeys, encodeKeys, parseBatch } from '../src/sync/sync-records.js';

/** The ways of publishing compared. */
const MODES: { name: string; opts: Pick<RouterSyncOptions, 'flushMs' | 'flushLeading'> }[] = [
  { name: 'leading edge, 5 ms (default)', opts: { flushMs: 5 } },
  { name: 'flushMs 0 (one XADD in flight)', opts: { flushMs: 0 } },
  { name: '5 ms timer (before)', opts: { flushMs: 5, flushLeading: false } },
];

/** Prints the hot-path table (see the file comment). */
export async function hotPath(o: { redisUrl: string; replicas: number; seed: number; rate: number }): Promise<void> {
  const { replicas, seed, rate } = o;
  const n = 2_000;
  const w = createWorkload('shared-prefix', { seed, requests: n, groups: 12, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 128, outputTokens: 64, rate });
  const pool = new EndpointPool(Array.from({ length: replicas }, (_, i) => ({ url: `http://127.0.0.1:${20_000 + i}` })));
  const eps = pool.all();
  const plain = buildScheduler({ preset: 'default' });
  const synced = await Promise.all(MODES.map(async (m, i) => {
    const sched = buildScheduler({ preset: 'default' });
    const sync = await RouterSync.start({ url: o.redisUrl, stream: `bench:hot:${process.pid}:${i}`, routerId: `hot${i}`, scheduler: sched, endpoints: pool, clock: systemClock, ...m.opts });
    return { ...m, sched, sync, cpu: [] as number[] };
  }));
  const prompts = w.requests.map((r) => ({ r, p: r.prompt() }));
  const once = async (sched: KvrouteScheduler, tag: string): Promise<number> => {
    const c0 = process.cpuUsage();
    for (const { r, p } of prompts) {
      const req = toInferenceRequest(w.model, r, p, 0);
      (req as { id: string }).id = `${tag}-${r.index}`;
      const res = await sched.schedule(req, eps);
      sched.onFirstToken(req, res.endpoint);
      sched.onComplete(req, res.endpoint, { ok: true, status: 200 });
      await new Promise((r) => setImmediate(r));
    }
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / n;
  };
  const a: number[] = [];
  for (let round = 0; round < 5; round++) {
    a.push(await once(plain, `p${round}`));
    for (const m of synced) m.cpu.push(await once(m.sched, `s${round}`));
    await new Promise((r) => setTimeout(r, 50));
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  // Receiving side: one remote pick's parse + key decode + application.
  const keys = synced[0].sched.pickKeysOf(toInferenceRequest(w.model, prompts[0].r, prompts[0].p, 0)) ?? { scheme: 'text/64/256', keys: new Float64Array(136) };
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
  const stats = synced.map((m) => m.sync.stats());
  for (const m of synced) await m.sync.close();
  console.log(`\n### sync on the hot path (${n} shared-prefix requests x 5 rounds, default profile, ${replicas} endpoints, no HTTP)\n`);
  console.log('| | CPU per request (median of 5) |');
  console.log('|---|---:|');
  console.log(`| schedule + first token + complete, no sync | ${med(a).toFixed(1)} µs |`);
  synced.forEach((m, i) => {
    const b = med(m.cpu);
    console.log(`| same with RouterSync publishing, ${m.name} | ${b.toFixed(1)} µs (+${(b - med(a)).toFixed(1)} µs, x${(b / med(a)).toFixed(2)}); ${(stats[i].sent / Math.max(1, stats[i].batches)).toFixed(1)} records per XADD |`);
  });
  console.log(`| apply one remote pick (${sample.keys.length} keys) + first token + completion records | ${(((c.user + c.system) / m)).toFixed(1)} µs |`);
  console.log(`\nrecords dropped: ${stats.map((x) => x.dropped).join(', ')}`);
}

/** Pick -> applied on the other router, adaptive vs 5 ms timer publishing (see the file comment). */
export async function syncDelay(o: { redisUrl: string; seed: number; rounds?: number }): Promise<void> {
  const w = createWorkload('shared-prefix', { seed: o.seed, requests: 100, groups: 4, promptsPerGroup: 25, systemTokens: 2048, questionTokens: 64, outputTokens: 8, rate: 10 });
  const pool = new EndpointPool([{ url: 'http://127.0.0.1:20001' }, { url: 'http://127.0.0.1:20002' }]);
  const delays = MODES.map(() => [] as number[]);
  const rounds = o.rounds ?? 3;
  for (let round = 0; round < MODES.length * rounds; round++) {
    const mode = round % MODES.length;
    const a = buildScheduler({ preset: 'default' });
    const b = buildScheduler({ preset: 'default' });
    const stream = `bench:delay:${process.pid}:${round}`;
    const sa = await RouterSync.start({ url: o.redisUrl, stream, routerId: 'A', scheduler: a, endpoints: pool, clock: systemClock, ...MODES[mode].opts });
    const sb = await RouterSync.start({ url: o.redisUrl, stream, routerId: 'B', scheduler: b, endpoints: pool, clock: systemClock, ...MODES[mode].opts });
    for (const r of w.requests) {
      const req = toInferenceRequest(w.model, r, r.prompt(), 0);
      (req as { id: string }).id = `d${round}-${r.index}`;
      const before = sb.stats().picksApplied;
      const t0 = performance.now();
      await a.schedule(req, pool.all());
      while (sb.stats().picksApplied === before) await new Promise((res) => setImmediate(res));
      delays[mode].push(performance.now() - t0);
      await new Promise((res) => setTimeout(res, 5));
    }
    await sa.close();
    await sb.close();
  }
  const q = (xs: number[], f: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * f))];
  console.log(`\n### sync delay: pick on router A -> applied on router B (${rounds} x 100 picks per mode, interleaved, real redis-server)\n`);
  console.log('| publishing | p50 | p90 | max |');
  console.log('|---|---:|---:|---:|');
  for (const [i, xs] of delays.entries()) console.log(`| ${MODES[i].name} | ${q(xs, 0.5).toFixed(2)} ms | ${q(xs, 0.9).toFixed(2)} ms | ${q(xs, 1).toFixed(2)} ms |`);
}
