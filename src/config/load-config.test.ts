import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../core/clock.js';
import { KvrError } from '../core/errors.js';
import { seededRng } from '../core/rng.js';
import { createScheduler } from '../scheduling/scheduler.js';
import { fakeEndpoints, fakeRequest, fakeText } from '../scheduling/testing/fakes.js';
import { loadConfig } from './load-config.js';
import type { LoadedConfig } from './scheduler-config.js';

const examplesDir = fileURLToPath(new URL('../../../examples/', import.meta.url));
const weights = (c: LoadedConfig) => Object.fromEntries(c.schedulingProfiles[0].plugins.map((r) => [r.pluginRef, r.weight]));

function configError(opts: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig(opts);
  } catch (err) {
    assert.ok(err instanceof KvrError, `not a KvrError: ${String(err)}`);
    assert.equal(err.code, 'KVR_ERR_CONFIG');
    return err.message;
  }
  assert.fail('expected a config error');
}

const doc = (plugins: string, profile: string) => `
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
${plugins}
schedulingProfiles:
- name: default
  plugins:
${profile}
`;

test('every example loads and schedules', async () => {
  const files = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml')).sort();
  assert.ok(files.length >= 9, files.join(', '));
  for (const must of ['default.yaml', 'llm-d-default.yaml', 'llm-d-precise.yaml', 'random.yaml', 'round-robin.yaml', 'seeds.yaml', 'sglang.yaml']) assert.ok(files.includes(must), must);
  for (const f of files) {
    const c = loadConfig({ file: examplesDir + f });
    assert.deepEqual(c.sources, ['file'], f);
    const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
    const r = await s.schedule(fakeRequest(fakeText(1000, 1)), fakeEndpoints(3));
    assert.equal(r.ranked.length, 3, f);
  }
});

test('the default config and examples/default.yaml agree', () => {
  const d = loadConfig();
  const f = loadConfig({ file: examplesDir + 'default.yaml' });
  assert.deepEqual(d.sources, ['default']);
  assert.deepEqual(d.plugins, f.plugins);
  assert.deepEqual(d.schedulingProfiles, f.schedulingProfiles);
  assert.deepEqual(weights(d), {
    'precise-prefix-cache-scorer': 3, 'prefill-cost-scorer': 4, 'queue-scorer': 1,
    'kv-cache-utilization-scorer': 1, 'session-affinity-scorer': 2, 'no-hit-lru-scorer': 6, 'no-hit-recent-work-scorer': 3,
    'max-score-picker': 1,
  });
  assert.equal(d.plugins.find((p) => p.type === 'session-affinity-scorer')?.parameters.clientIp, false);
  assert.equal(d.plugins.find((p) => p.type === 'prefill-cost-scorer')?.parameters.uncachedWeight, 2);
  assert.deepEqual(d.warnings, []);
});

test('seeds.yaml: KV-cache 5 (precise), prefix 3, session 2 with client IP, load 1', () => {
  const c = loadConfig({ file: examplesDir + 'seeds.yaml' });
  assert.deepEqual(weights(c), { 'kvcache-aware-scorer': 5, 'prefix-cache-scorer': 3, 'session-affinity-scorer': 2, 'load-aware-scorer': 1, 'max-score-picker': 1 });
  assert.equal(c.plugins.find((p) => p.name === 'kvcache-aware-scorer')?.type, 'precise-prefix-cache-scorer');
  const s = c.plugins.find((p) => p.name === 'session-affinity-scorer')!;
  assert.deepEqual(s.parameters, { sessionHeader: 'x-session-id', clientIp: true, ttlSeconds: 7200 });
});

test('seed env alone: only the enabled scorers, weights default 1, KV-cache is the precise scorer', () => {
  const c = loadConfig({ env: { ENABLE_KVCACHE_AWARE_SCORER: 'true', ENABLE_PREFIX_AWARE_SCORER: 'true', PREFIX_AWARE_SCORER_WEIGHT: '2' } });
  assert.deepEqual(c.sources, ['env']);
  assert.deepEqual(weights(c), { 'prefix-cache-scorer': 2, 'kvcache-aware-scorer': 1, 'max-score-picker': 1 });
  assert.equal(c.plugins.find((p) => p.name === 'kvcache-aware-scorer')?.type, 'precise-prefix-cache-scorer');
  createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
});

test('seed env: the four demo weights', () => {
  const c = loadConfig({
    env: {
      ENABLE_KVCACHE_AWARE_SCORER: 'true', KVCACHE_AWARE_SCORER_WEIGHT: '5',
      ENABLE_PREFIX_AWARE_SCORER: 'TRUE', PREFIX_AWARE_SCORER_WEIGHT: '3',
      ENABLE_SESSION_AWARE_SCORER: '1', SESSION_AWARE_SCORER_WEIGHT: '2',
      ENABLE_LOAD_AWARE_SCORER: 'true', LOAD_AWARE_SCORER_WEIGHT: '1',
    },
  });
  assert.deepEqual(weights(c), { 'prefix-cache-scorer': 3, 'kvcache-aware-scorer': 5, 'load-aware-scorer': 1, 'session-affinity-scorer': 2, 'max-score-picker': 1 });
});

test('seed env on top of a file: enable adds, disable removes, weight alone adjusts', () => {
  const c = loadConfig({
    file: examplesDir + 'llm-d-default.yaml',
    env: { ENABLE_LOAD_AWARE_SCORER: 'true', LOAD_AWARE_SCORER_WEIGHT: '4', ENABLE_PREFIX_AWARE_SCORER: 'false' },
  });
  assert.deepEqual(c.sources, ['file', 'env']);
  assert.deepEqual(weights(c), { 'load-aware-scorer': 4, 'queue-scorer': 2, 'kv-cache-utilization-scorer': 2, 'max-score-picker': 1 });
  const d = loadConfig({ env: { KVCACHE_AWARE_SCORER_WEIGHT: '7', SESSION_AWARE_SCORER_WEIGHT: '0' } });
  assert.deepEqual(d.sources, ['default', 'env']);
  assert.equal(weights(d)['precise-prefix-cache-scorer'], 7);
  assert.equal(weights(d)['session-affinity-scorer'], 0);
  const e = loadConfig({ env: { LOAD_AWARE_SCORER_WEIGHT: '2' } });
  assert.ok(e.warnings.some((w) => w.includes('LOAD_AWARE_SCORER_WEIGHT is set but the scorer is not enabled')));
});

test('Redis address is taken; PD_ENABLED splits the profile into decode + prefill run by the disagg handler', () => {
  const c = loadConfig({ env: { KVCACHE_INDEXER_REDIS_ADDR: 'redis:6379', PD_ENABLED: 'true', PD_PROMPT_LEN_THRESHOLD: '10', PREFILL_ENABLE_LOAD_AWARE_SCORER: 'true', PREFILL_LOAD_AWARE_SCORER_WEIGHT: '3' } });
  assert.equal(c.extras.kvCacheIndexerRedisAddr, 'redis:6379');
  assert.equal(c.extras.pdEnabled, true);
  assert.deepEqual(c.schedulingProfiles.map((p) => p.name), ['decode', 'prefill']);
  const decode = c.schedulingProfiles[0].plugins.map((r) => r.pluginRef);
  const prefill = c.schedulingProfiles[1].plugins;
  assert.equal(decode[0], 'decode-filter');
  assert.ok(!decode.includes('load-aware-scorer'), 'PREFILL_ variables touch the prefill profile only');
  assert.equal(prefill[0].pluginRef, 'load-aware-scorer');
  assert.equal(prefill[0].weight, 3);
  assert.ok(prefill.some((r) => r.pluginRef === 'prefill-filter'));
  assert.deepEqual(c.plugins.find((p) => p.type === 'prefix-based-pd-decider')?.parameters, { nonCachedTokens: 16, promptTokens: 10 });
  const s = createScheduler(c, { clock: new ManualClock(0), rng: seededRng(1) });
  assert.equal(s.handler.type, 'disagg-profile-handler');
  assert.equal(s.prefillProfile?.name, 'prefill');
});

test('P/D variables without PD_ENABLED=true are errors, never ignored', () => {
  const m = configError({ env: { PD_PROMPT_LEN_THRESHOLD: '10', DECODE_ENABLE_PREFIX_AWARE_SCORER: 'true' } });
  assert.match(m, /PD_PROMPT_LEN_THRESHOLD: configures prefill\/decode disaggregation, which is off; set PD_ENABLED=true/);
  assert.match(m, /DECODE_ENABLE_PREFIX_AWARE_SCORER: configures/);
});

test('bad environment values are clear errors', () => {
  const m = configError({ env: { ENABLE_PREFIX_AWARE_SCORER: 'true', PREFIX_AWARE_SCORER_WEIGHT: 'abc', ENABLE_LOAD_AWARE_SCORER: 'yes', PD_ENABLED: 'true', PD_PROMPT_LEN_THRESHOLD: 'x', KVCACHE_AWARE_SCORER_WEIGHT: '-1' } });
  assert.match(m, /PREFIX_AWARE_SCORER_WEIGHT: "abc" is not a valid weight; use a number >= 0/);
  assert.match(m, /ENABLE_LOAD_AWARE_SCORER: "yes" is not a boolean; use true or false/);
  assert.match(m, /PD_PROMPT_LEN_THRESHOLD: "x" is not a token count/);
  assert.match(m, /KVCACHE_AWARE_SCORER_WEIGHT: "-1" is not a valid weight/);
});

test('config error: pluginRef not declared names the path and the declared plugins', () => {
  const m = configError({ text: doc('- type: prefix-cache-scorer\n- type: max-score-picker', '  - {pluginRef: prefix-cache-scorer}\n  - {pluginRef: prefix-scorer, weight: 2}\n  - {pluginRef: max-score-picker}') });
  assert.match(m, /schedulingProfiles\[0\]\.plugins\[1\]\.pluginRef: "prefix-scorer" is not a declared plugin; declared: prefix-cache-scorer, max-score-picker/);
});

test('config error: unknown plugin type lists the known types', () => {
  const m = configError({ text: doc('- type: prefix-scorer\n- type: max-score-picker', '  - {pluginRef: max-score-picker}') });
  assert.match(m, /plugins\[0\]\.type: unknown plugin type "prefix-scorer"; known types: always-disagg-pd-decider, approx-prefix-cache-producer, decode-filter, disagg-profile-handler, inflight-load-scorer, kv-cache-utilization-scorer, label-selector-filter, least-request-scorer, load-aware-scorer, max-score-picker, never-disagg-pd-decider, no-hit-lru-scorer, no-hit-recent-work-scorer, precise-prefix-cache-scorer, prefill-cost-scorer, prefill-filter, prefix-based-pd-decider, prefix-cache-scorer, queue-scorer, random-picker, round-robin-picker, session-affinity-scorer/);
});

test('config error: weight must be a number >= 0', () => {
  const base = '- type: queue-scorer\n- type: max-score-picker';
  for (const w of ['-1', 'heavy', '[1]']) {
    const m = configError({ text: doc(base, `  - {pluginRef: queue-scorer, weight: ${w}}\n  - {pluginRef: max-score-picker}`) });
    assert.match(m, /schedulingProfiles\[0\]\.plugins\[0\]\.weight: must be a number >= 0/, w);
  }
});

test('config error: a profile needs exactly one picker', () => {
  const none = configError({ text: doc('- type: queue-scorer', '  - {pluginRef: queue-scorer}') });
  assert.match(none, /schedulingProfiles\[0\]\.plugins: a profile needs exactly one picker, "default" has 0; pickers: max-score-picker, random-picker, round-robin-picker/);
  const two = configError({ text: doc('- type: random-picker\n- type: max-score-picker', '  - {pluginRef: random-picker}\n  - {pluginRef: max-score-picker}') });
  assert.match(two, /has 2/);
});

test('config error: scorer parameters are validated per type', () => {
  const m = configError({
    text: doc(
      '- type: prefix-cache-scorer\n  parameters: {hashBlockSize: 0, maxPrefixBlocks: 9}\n- type: session-affinity-scorer\n  parameters: {ttlSeconds: "long", clientIp: "yes"}\n- type: max-score-picker',
      '  - {pluginRef: max-score-picker}',
    ),
  });
  assert.match(m, /plugins\[0\]\.parameters\.hashBlockSize: /);
  assert.match(m, /plugins\[0\]\.parameters: unknown field "maxPrefixBlocks"; allowed: hashBlockSize, maxPrefixBlocksToMatch, lruCapacityPerServer/);
  assert.match(m, /plugins\[1\]\.parameters\.ttlSeconds: /);
  assert.match(m, /plugins\[1\]\.parameters\.clientIp: /);
});

test('config error: structure (apiVersion, kind, unknown fields, missing lists, YAML syntax, file)', () => {
  assert.match(configError({ text: 'apiVersion: v9\nkind: Foo\nplugins: []\nschedulingProfiles: []\nextra: 1' }),
    /apiVersion: must be one of: llm-d\.ai\/v1alpha1[\s\S]*kind: must be EndpointPickerConfig[\s\S]*plugins: must declare at least one plugin[\s\S]*unknown field "extra"; allowed: apiVersion, kind, plugins, schedulingProfiles/);
  assert.match(configError({ text: doc('- type: max-score-picker\n  paramters: {}', '  - {pluginRef: max-score-picker}') }), /plugins\[0\]: unknown field "paramters"; allowed: type, name, parameters/);
  assert.match(configError({ text: 'plugins: [' }), /not valid YAML/);
  assert.match(configError({ file: examplesDir + 'nope.yaml' }), /cannot read config file/);
});

test('config error: duplicate names and several profiles', () => {
  const dup = configError({ text: doc('- type: queue-scorer\n- type: queue-scorer\n- type: max-score-picker', '  - {pluginRef: max-score-picker}') });
  assert.match(dup, /plugins\[1\]\.name: "queue-scorer" is already declared; give each instance of queue-scorer its own name/);
  const two = configError({ text: doc('- type: max-score-picker', '  - {pluginRef: max-score-picker}\n- name: other\n  plugins: [{pluginRef: max-score-picker}]') });
  assert.match(two, /schedulingProfiles: 2 profiles \(default, other\) need a profile handler that runs them; add "- type: disagg-profile-handler"/);
});

test('weights on pickers are ignored with a warning', () => {
  const c = loadConfig({ text: doc('- type: max-score-picker', '  - {pluginRef: max-score-picker, weight: 3}') });
  assert.match(c.warnings[0], /weight: ignored, "max-score-picker" is a picker/);
});
