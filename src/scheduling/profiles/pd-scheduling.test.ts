import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../core/clock.js';
import type { Endpoint, EndpointRole } from '../../core/endpoint.js';
import { KvrError } from '../../core/errors.js';
import { seededRng } from '../../core/rng.js';
import { loadConfig } from '../../config/load-config.js';
import { createScheduler } from '../scheduler.js';
import { fakeEndpoint, fakeRequest, fakeText } from '../testing/fakes.js';
import { prefixBasedVerdict } from '../deciders/prefix-based-pd-decider.js';
import { matchesSelector } from '../filters/label-selector-filter.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/llm-d/', import.meta.url));

function ep(i: number, role: EndpointRole, labels: Record<string, string> = {}): Endpoint {
  return { ...fakeEndpoint(i), role, labels };
}

function configError(text: string): string {
  try {
    loadConfig({ text });
  } catch (err) {
    assert.ok(err instanceof KvrError);
    return err.message;
  }
  assert.fail('expected a config error');
}

const head = 'apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n';

for (const f of ['pd-epp-config.yaml', 'sim-pd-epp-config.yaml', 'disaggregation-doc-pd-labels.yaml']) {
  test(`llm-d sample ${f} loads unchanged and builds a decode-first P/D scheduler`, () => {
    const c = loadConfig({ file: fixtures + f });
    const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
    assert.equal(s.handler.type, 'disagg-profile-handler');
    assert.equal(s.profile.name, 'decode');
    assert.equal(s.prefillProfile?.name, 'prefill');
  });
}

test('approx-prefix-cache-producer and llm-d prefix-cache-scorer parameters are applied, not ignored', () => {
  const c = loadConfig({ file: fixtures + 'sim-pd-epp-config.yaml' });
  // blockSizeTokens 16 -> 64 characters per block; 4096 tokens / 16 = 256 blocks.
  assert.deepEqual(c.plugins.find((p) => p.type === 'prefix-cache-scorer')?.parameters, { hashBlockSize: 64, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250 });
  const d = loadConfig({ file: fixtures + 'disaggregation-doc-pd-labels.yaml' });
  assert.deepEqual(d.plugins.find((p) => p.type === 'prefix-cache-scorer')?.parameters, { hashBlockSize: 20, maxPrefixBlocksToMatch: 256, lruCapacityPerServer: 31250 });
  assert.match(configError(`${head}plugins:\n- type: prefix-cache-scorer\n  parameters: {autoTune: true}\n- type: max-score-picker\nschedulingProfiles:\n- name: d\n  plugins: [{pluginRef: prefix-cache-scorer}, {pluginRef: max-score-picker}]\n`), /autoTune: true .* is not supported/);
});

test('decode first; prefill profile only when the decider says so, judged on the CHOSEN decode endpoint', async () => {
  const c = loadConfig({ file: fixtures + 'pd-epp-config.yaml' });
  const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
  const eps = [ep(0, 'prefill'), ep(1, 'decode'), ep(2, 'prefill'), ep(3, 'decode')];
  const long = fakeText(4000, 7);
  const r1 = await s.schedule(fakeRequest(long), eps);
  assert.equal(r1.endpoint.role, 'decode');
  assert.equal(r1.prefill?.endpoint.role, 'prefill');
  assert.equal(r1.pd?.disaggregate, true);
  assert.equal(r1.pd?.cachedTokens, 0);
  // Same prompt again: the prefix scorer sends it to the same decode endpoint, which now holds it.
  const r2 = await s.schedule(fakeRequest(long), eps);
  assert.equal(r2.endpoint.id, r1.endpoint.id);
  assert.equal(r2.pd?.disaggregate, false, r2.pd?.reason);
  assert.ok((r2.pd?.cachedTokens ?? 0) >= 990);
  assert.equal(r2.prefill, undefined);
  // The prompt plus a long new suffix: the uncached tail on the decode endpoint is long again.
  const r3 = await s.schedule(fakeRequest(long + fakeText(800, 9)), eps);
  assert.equal(r3.endpoint.id, r1.endpoint.id);
  assert.equal(r3.pd?.disaggregate, true);
  assert.ok(r3.pd!.cachedTokens >= 990 && r3.pd!.promptTokens - r3.pd!.cachedTokens >= 16);
  // Short prompt: under nonCachedTokens.
  const r4 = await s.schedule(fakeRequest('hello there'), eps);
  assert.equal(r4.pd?.disaggregate, false);
  assert.match(r4.pd!.reason, /< nonCachedTokens 16/);
});

test('no prefill endpoint: served aggregated and the verdict says why; prefill assignment closes on its endpoint', async () => {
  const c = loadConfig({ text: `${head}plugins:\n- type: decode-filter\n- type: prefill-filter\n- type: max-score-picker\n- type: always-disagg-pd-decider\n- type: disagg-profile-handler\n  parameters: {deciders: {prefill: always-disagg-pd-decider}}\nschedulingProfiles:\n- name: decode\n  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}]\n- name: prefill\n  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}]\n` });
  const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
  const first = fakeRequest('x'.repeat(400));
  const r = await s.schedule(first, [ep(0, 'decode'), ep(1, 'decode')]);
  assert.equal(r.prefill, undefined);
  assert.deepEqual([r.pd?.disaggregate, r.pd?.reason], [false, 'no prefill endpoint']);
  s.onComplete(first, r.endpoint, { ok: true, status: 200 });
  const eps = [ep(0, 'decode'), ep(1, 'prefill')];
  const req = fakeRequest('y'.repeat(400));
  const r2 = await s.schedule(req, eps);
  assert.equal(r2.prefill?.endpoint.id, 'ep-1');
  assert.equal(s.load.load(eps[1]).inflight, 1, 'the prefill leg is in flight on the prefill endpoint');
  assert.equal(s.load.load(eps[0]).inflight, 1);
  s.onComplete(req, eps[1], { ok: true, status: 200 });
  assert.equal(s.load.load(eps[1]).inflight, 0);
  assert.equal(s.load.load(eps[0]).inflight, 1, 'closing the prefill leaves the decode assignment open');
  s.onComplete(req, eps[0], { ok: true, status: 200 });
  assert.equal(s.load.load(eps[0]).inflight, 0);
});

test('prefix-based-pd-decider rule (table)', () => {
  const rows: [nonCached: number, promptMin: number, prompt: number, cached: number, want: boolean][] = [
    [16, 0, 100, 0, true],
    [16, 0, 100, 84, true], // 16 uncached >= 16
    [16, 0, 100, 85, false], // 15 uncached
    [16, 0, 10, 0, false], // prompt shorter than nonCachedTokens
    [0, 0, 10_000, 0, false], // 0 disables
    [16, 200, 150, 0, false], // below promptTokens
    [16, 200, 200, 0, true],
    [16, 0, 100, 500, false], // cached capped at the prompt
    [1, 0, 1, 0, true],
  ];
  for (const [n, p, prompt, cached, want] of rows) {
    const v = prefixBasedVerdict({ nonCachedTokens: n, promptTokens: p }, prompt, cached);
    assert.equal(v.disaggregate, want, `nonCached ${n} promptTokens ${p} prompt ${prompt} cached ${cached}: ${v.reason}`);
  }
});

test('role filters and label selector use llm-d.ai/role, falling back to the endpoint role', async () => {
  const c = loadConfig({ text: `${head}plugins:\n- type: prefill-filter\n- type: max-score-picker\nschedulingProfiles:\n- name: p\n  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}]\n` });
  const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
  const r = await s.schedule(fakeRequest('abc'), [ep(0, 'decode'), ep(1, 'both', { 'llm-d.ai/role': 'prefill' }), ep(2, 'decode', { 'llm-d.ai/role': 'decode' })]);
  assert.deepEqual(r.ranked.map((e) => e.id), ['ep-1']);
  const sel = { matchLabels: {}, matchExpressions: [{ key: 'role', operator: 'In' as const, values: ['prefill'] }] };
  assert.equal(matchesSelector(sel, { role: 'prefill' }), true);
  assert.equal(matchesSelector(sel, { role: 'decode' }), false);
  assert.equal(matchesSelector({ matchLabels: { a: 'b' }, matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }, { a: 'b' }), true);
});

test('config loader rejects orders and wiring that cannot work, naming the plugins', () => {
  const order = configError(`${head}plugins:\n- type: no-hit-lru-scorer\n- type: prefix-cache-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: d\n  plugins: [{pluginRef: no-hit-lru-scorer}, {pluginRef: prefix-cache-scorer}, {pluginRef: max-score-picker}]\n`);
  assert.match(order, /no-hit-lru-scorer reads prefix-prediction, produced by prefix-cache-scorer which runs after it; list prefix-cache-scorer before no-hit-lru-scorer/);
  const noProducer = configError(`${head}plugins:\n- type: decode-filter\n- type: prefill-filter\n- type: max-score-picker\n- type: prefix-based-pd-decider\n- type: disagg-profile-handler\n  parameters: {deciders: {prefill: prefix-based-pd-decider}}\nschedulingProfiles:\n- name: decode\n  plugins: [{pluginRef: decode-filter}, {pluginRef: max-score-picker}]\n- name: prefill\n  plugins: [{pluginRef: prefill-filter}, {pluginRef: max-score-picker}]\n`);
  assert.match(noProducer, /prefix-based-pd-decider: consumes prefix-prediction from decode profile "decode", which has no plugin producing it/);
  const unused = configError(`${head}plugins:\n- type: max-score-picker\n- type: always-disagg-pd-decider\nschedulingProfiles:\n- name: d\n  plugins: [{pluginRef: max-score-picker}]\n`);
  assert.match(unused, /decider "always-disagg-pd-decider" is declared but no profile handler uses it/);
  const missing = configError(`${head}plugins:\n- type: max-score-picker\n- type: disagg-profile-handler\n  parameters: {profiles: {decode: dec}}\nschedulingProfiles:\n- name: d\n  plugins: [{pluginRef: max-score-picker}]\n`);
  assert.match(missing, /decode profile "dec" is not among schedulingProfiles/);
  const encode = configError(`${head}plugins:\n- type: max-score-picker\n- type: disagg-profile-handler\n  parameters: {deciders: {encode: x}}\nschedulingProfiles:\n- name: decode\n  plugins: [{pluginRef: max-score-picker}]\n`);
  assert.match(encode, /encode disaggregation is not supported/);
});
