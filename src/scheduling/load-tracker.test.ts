import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { seededRng } from '../core/rng.js';
import { loadConfig } from '../config/load-config.js';
import { LoadTracker } from './load-tracker.js';
import { createScheduler } from './scheduler.js';
import { fakeEndpoints, fakeRequest, fakeText } from './testing/fakes.js';

test('LoadTracker: picked -> first token -> complete moves and removes work exactly once', () => {
  const t = new LoadTracker(256);
  const [e] = fakeEndpoints(1);
  const req = fakeRequest('x'.repeat(4 * 1024)); // 1024 tokens
  const ctx = { request: req, now: 0 };
  t.onPicked(ctx, e);
  assert.deepEqual(t.load(e), { prefillTokens: 1024, decodingSeqs: 0, inflight: 1, work: 5 });
  t.onFirstToken(ctx, e);
  t.onFirstToken(ctx, e);
  assert.deepEqual(t.load(e), { prefillTokens: 0, decodingSeqs: 1, inflight: 1, work: 1 });
  t.onComplete(ctx, e);
  t.onComplete(ctx, e);
  assert.deepEqual(t.load(e), { prefillTokens: 0, decodingSeqs: 0, inflight: 0, work: 0 });
});

test('a burst of 8 cold requests over 4 endpoints spreads 2/2/2/2 with the load scorer alone', async () => {
  const config = loadConfig({
    text: `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: inflight-load-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: inflight-load-scorer, weight: 1}
  - {pluginRef: max-score-picker}
`,
  });
  for (const seed of [1, 2, 3]) {
    const sched = createScheduler(config, { clock: new ManualClock(0), rng: seededRng(seed) });
    const eps = fakeEndpoints(4);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => sched.schedule(fakeRequest(fakeText(4000, 100 + i)), eps)));
    const counts = [0, 0, 0, 0];
    for (const r of results) counts[r.endpoint.index]++;
    assert.deepEqual(counts, [2, 2, 2, 2], `seed ${seed}`);
  }
});

test('without pick-time accounting the same burst would pile up (the test can fail)', async () => {
  const config = loadConfig({
    text: `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins: [{type: queue-scorer}, {type: max-score-picker}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: queue-scorer}, {pluginRef: max-score-picker}]}]
`,
  });
  // Stale engine metrics say endpoint 0 is idle and the others are busy: all 8 go to it.
  const sched = createScheduler(config, { clock: new ManualClock(0), rng: seededRng(1) });
  const eps = fakeEndpoints(4);
  eps.forEach((e, i) => (e.metrics = { ...e.metrics, waiting: i === 0 ? 0 : 3 }));
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => sched.schedule(fakeRequest(fakeText(4000, i)), eps)));
  assert.equal(results.filter((r) => r.endpoint.index === 0).length, 8);
});

test('remote load (other router replicas) adds to work() but not to the local load(), and zeros forget it', () => {
  const t = new LoadTracker(256);
  const [a, b] = fakeEndpoints(2);
  t.setRemote(a.id, 512, 2);
  assert.equal(t.work(a), 512 / 256 + 2, 'remote-only endpoint');
  assert.equal(t.work(b), 0);
  assert.deepEqual(t.load(a), { prefillTokens: 0, decodingSeqs: 0, inflight: 0, work: 4 }, 'load() counts are local; work includes remote');
  assert.deepEqual(t.remoteLoad(a.id), { prefillTokens: 512, inflight: 2 });
  t.setRemote(a.id, 0, 0);
  assert.equal(t.work(a), 0);
  assert.deepEqual(t.remoteLoad(a.id), { prefillTokens: 0, inflight: 0 });
});
