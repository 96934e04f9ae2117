import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.js';
import { seededRng } from '../../core/rng.js';
import { loadConfig } from '../../config/load-config.js';
import { createScheduler } from '../scheduler.js';
import { fakeEndpoints, fakeRequest, fakeText } from '../testing/fakes.js';
import type { SglangCacheAwarePicker } from './sglang-cache-aware-picker.js';

const YAML = `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: sglang-cache-aware-picker
  parameters: {balanceAbsThreshold: 2, balanceRelThreshold: 1.5, cacheThreshold: 0.3}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: sglang-cache-aware-picker
`;

function setup() {
  const sched = createScheduler(loadConfig({ text: YAML }), { clock: new ManualClock(0), rng: seededRng(3) });
  const picker = sched.plugins.get('sglang-cache-aware-picker') as SglangCacheAwarePicker;
  return { sched, picker, eps: fakeEndpoints(3) };
}

test('sglang picker: longest match above the threshold, smallest tree below it', async () => {
  const { sched, picker, eps } = setup();
  const doc = fakeText(4000, 1);
  const first = await sched.schedule(fakeRequest(doc + fakeText(200, 2)), eps);
  // Same document, new question: > 30 % of the prompt matches the first endpoint's tree.
  const r2 = fakeRequest(doc + fakeText(200, 3));
  const second = await sched.schedule(r2, eps);
  assert.equal(second.endpoint.id, first.endpoint.id);
  sched.onComplete(r2, second.endpoint, { ok: true, status: 200 });
  // An unrelated prompt matches nothing: the smallest (empty) tree wins, not the one holding blocks.
  const r3 = fakeRequest(fakeText(4000, 9));
  const third = await sched.schedule(r3, eps);
  assert.notEqual(third.endpoint.id, first.endpoint.id);
  assert.ok(picker.index.blocksOf(third.endpoint) > 0, 'the prompt is inserted into the picked tree');
  const st = picker.stats();
  assert.equal(st['cache-match'], 1);
  assert.equal(st['smallest-tree'], 2);
});

test('sglang picker: imbalanced in-flight load routes to the least loaded despite a match', async () => {
  const { sched, picker, eps } = setup();
  const doc = fakeText(4000, 5);
  const home = (await sched.schedule(fakeRequest(doc), eps)).endpoint;
  // Pile requests on `home` (never completed): 3 in flight vs 0 is past abs 2 and rel 1.5.
  for (let i = 0; i < 2; i++) {
    const r = fakeRequest(doc + fakeText(100, 100 + i));
    const res = await sched.schedule(r, eps);
    assert.equal(res.endpoint.id, home.id, 'matches go home while balanced');
  }
  const r = fakeRequest(doc + fakeText(100, 999));
  const res = await sched.schedule(r, eps);
  assert.notEqual(res.endpoint.id, home.id, 'imbalance wins over the cache match');
  assert.equal(picker.stats().imbalanced, 1);
  assert.equal(res.ranked.length, 3, 'every candidate is ranked for retries');
});
