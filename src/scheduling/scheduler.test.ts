import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { ManualClock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import { defaultConfigDoc } from '../config/default-config.js';
import { loadConfig } from '../config/load-config.js';
import type { SchedulerConfig } from '../config/scheduler-config.js';
import { createDefaultRegistry } from './builtin-plugins.js';
import { createScheduler } from './scheduler.js';
import { fakeEndpoints, fakeRequest, fakeText } from './testing/fakes.js';
import type { Scorer } from './types.js';

const OK = { ok: true, status: 200 };

function withWeights(weights: Record<string, number>): SchedulerConfig {
  const base = loadConfig();
  return {
    plugins: base.plugins,
    schedulingProfiles: [{
      name: 'default',
      plugins: base.schedulingProfiles[0].plugins.map((r) => ({ pluginRef: r.pluginRef, weight: weights[r.pluginRef] ?? r.weight })),
    }],
  };
}

test('prefix: the second request with the same long prefix goes where the first went', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(seed) });
    const eps = fakeEndpoints(8);
    const system = fakeText(32_000, 42);
    const r1 = fakeRequest(system + ' question one?');
    const a = await sched.schedule(r1, eps);
    sched.onFirstToken(r1, a.endpoint);
    sched.onComplete(r1, a.endpoint, OK);
    const r2 = fakeRequest(system + ' another question entirely');
    const b = await sched.schedule(r2, eps);
    assert.equal(b.endpoint.id, a.endpoint.id, `seed ${seed}`);
    assert.equal(b.reason, 'prefix-cache');
    assert.equal(b.candidates[0].scores['precise-prefix-cache-scorer'], 1);
    assert.equal(b.candidates[1].scores['precise-prefix-cache-scorer'], 0);
  }
});

async function hotPrefix(config: SchedulerConfig): Promise<number[]> {
  const sched = createScheduler(config, { clock: new ManualClock(0), rng: seededRng(7) });
  const eps = fakeEndpoints(4);
  const doc = fakeText(8_000, 5);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 100; i++) {
    const r = await sched.schedule(fakeRequest(doc + ` q${i}`), eps); // nothing completes
    counts[r.endpoint.index]++;
  }
  return counts;
}

test('load: a hot prefix does not take all of 100 in-flight requests', async () => {
  const counts = await hotPrefix(loadConfig());
  const max = Math.max(...counts);
  assert.ok(max < 100, `one endpoint took ${max}`);
  assert.ok(counts.every((c) => c > 0), `every endpoint helps: ${counts}`);
  assert.ok(max >= 25 && max <= 60, `locality still pays before spilling: ${counts}`);
  // Without the cost term the prefix scorer sends all 100 to one endpoint.
  const noLoad = await hotPrefix(withWeights({ 'prefill-cost-scorer': 0 }));
  assert.equal(Math.max(...noLoad), 100);
});

test('single candidate skips scoring; no candidate is KVR_ERR_NO_ENDPOINT', async () => {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const [e] = fakeEndpoints(1);
  const r = await sched.schedule(fakeRequest(fakeText(640, 1)), [e]);
  assert.equal(r.reason, 'single-candidate');
  assert.deepEqual(r.ranked, [e]);
  assert.equal(r.candidates.length, 1);
  await assert.rejects(sched.schedule(fakeRequest('x'), []), (err: unknown) => err instanceof KvrError && err.code === 'KVR_ERR_NO_ENDPOINT');
  // The pick still taught the prefix index.
  const scorer = sched.plugins.get('precise-prefix-cache-scorer') as unknown as { approximate: { index: { blocksOf(e: unknown): number } } };
  assert.equal(scorer.approximate.index.blocksOf(e), 10);
});

test('result: ranked fallbacks, top-5 raw scores, reason and duration', async () => {
  const clock = new ManualClock(0);
  const sched = createScheduler(loadConfig(), { clock, rng: seededRng(1) });
  const eps = fakeEndpoints(8);
  eps[3].metrics = { ...eps[3].metrics, waiting: 0 };
  for (const [i, e] of eps.entries()) if (i !== 3) e.metrics = { ...e.metrics, waiting: 4, kvUsage: 0.5 };
  const r = await sched.schedule(fakeRequest(fakeText(640, 9)), eps);
  assert.equal(r.endpoint, eps[3]);
  assert.equal(r.ranked.length, 8);
  assert.equal(new Set(r.ranked).size, 8);
  assert.equal(r.candidates.length, 5);
  assert.deepEqual(Object.keys(r.candidates[0].scores).sort(), ['kv-cache-utilization-scorer', 'no-hit-lru-scorer', 'no-hit-recent-work-scorer', 'precise-prefix-cache-scorer', 'prefill-cost-scorer', 'queue-scorer', 'session-affinity-scorer']);
  // prefix 0 (cold), cost 1 (nothing in flight), queue 1, kv 1, session 0, no-hit-lru 1 and
  // no-hit-recent-work 1 (cold, all endpoints equally unused)
  assert.equal(r.candidates[0].total, 3 * 0 + 4 * 1 + 1 * 1 + 1 * 1 + 2 * 0 + 6 * 1 + 3 * 1);
  assert.equal(r.reason, 'load');
  assert.equal(r.durationMs, 0);
  assert.equal(r.profile, 'default');
});

test('tie-break reason when the two best totals tie', async () => {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const r = await sched.schedule(fakeRequest('hello'), fakeEndpoints(3));
  assert.equal(r.reason, 'tie-break');
});

test('lifecycle: onComplete once; reassign completes the old endpoint and opens the new one', async () => {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const eps = fakeEndpoints(3);
  const req = fakeRequest(fakeText(4_000, 3));
  const r = await sched.schedule(req, eps);
  const from = r.endpoint;
  const to = r.ranked[1];
  assert.ok(sched.load.work(from) > 1);
  sched.reassign(req, from, to);
  assert.equal(sched.load.work(from), 0);
  assert.ok(sched.load.work(to) > 1);
  sched.onComplete(req, from, OK); // stale endpoint: ignored
  assert.ok(sched.load.work(to) > 1);
  sched.onFirstToken(req, to);
  assert.equal(sched.load.work(to), 1);
  sched.onComplete(req, to, OK);
  sched.onComplete(req, to, OK);
  assert.equal(sched.load.work(to), 0);
  assert.equal(sched.load.load(to).inflight, 0);
});

test('session affinity: an explicit session sticks when prefix and load do not decide', async () => {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(3) });
  const eps = fakeEndpoints(4);
  const headers = { 'x-session-id': 'conv-1' };
  const first = await sched.schedule(fakeRequest('hi', { headers }), eps);
  void first;
  for (let i = 0; i < 5; i++) {
    const req = fakeRequest('short', { headers });
    const r = await sched.schedule(req, eps);
    assert.equal(r.endpoint.id, first.endpoint.id);
    assert.equal(r.reason, 'session-affinity');
    sched.onComplete(req, r.endpoint, OK);
  }
});

test('async scorers are awaited and concurrent requests do not share score buffers', async () => {
  const registry = createDefaultRegistry();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  registry.register({
    type: 'slow-scorer', kind: 'scorer', description: 'test', params: z.strictObject({}),
    create: (name): Scorer => ({
      type: 'slow-scorer', name,
      async score(ctx, candidates, out) {
        await gate;
        // Prefer the endpoint whose index matches the request's digit.
        const want = Number(ctx.request.promptText);
        for (let i = 0; i < candidates.length; i++) out[i] = candidates[i].index === want ? 1 : 0;
      },
    }),
  });
  const doc = defaultConfigDoc();
  doc.plugins.push({ type: 'slow-scorer' });
  doc.schedulingProfiles[0].plugins.unshift({ pluginRef: 'slow-scorer', weight: 100 });
  const config = loadConfig({ text: JSON.stringify(doc), registry });
  const sched = createScheduler(config, { clock: new ManualClock(0), rng: seededRng(1), registry });
  const eps = fakeEndpoints(4);
  const pending = [0, 1, 2, 3].map((i) => sched.schedule(fakeRequest(String(i)), eps));
  release();
  const results = await Promise.all(pending);
  assert.deepEqual(results.map((r) => r.endpoint.index), [0, 1, 2, 3]);
});

test('removeEndpoint forgets prefix blocks and load', async () => {
  const sched = createScheduler(loadConfig(), { clock: new ManualClock(0), rng: seededRng(1) });
  const eps = fakeEndpoints(2);
  const text = fakeText(6_400, 1);
  const r = await sched.schedule(fakeRequest(text), eps);
  sched.removeEndpoint(r.endpoint);
  assert.equal(sched.load.work(r.endpoint), 0);
  const scorer = sched.plugins.get('precise-prefix-cache-scorer') as unknown as { approximate: { index: { blocksOf(e: unknown): number } } };
  assert.equal(scorer.approximate.index.blocksOf(r.endpoint), 0);
});
