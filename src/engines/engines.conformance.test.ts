/**
 * The shared conformance suite: every engine adapter against output recorded from the real
 * engine (src/engines/fixtures, each naming its source file and version).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePromText } from '../datalayer/prom-text.js';
import { mapNames } from './common.js';
import { detectEngine, engineFromInfo, engineFromMetricsText, engineFromModels } from './detect.js';
import { ENGINE_ADAPTERS, adapterFor } from './registry.js';
import type { EngineAdapter, EngineUsage } from './types.js';
import * as L from './fixtures/llamacpp.js';
import * as S from './fixtures/sglang.js';
import * as V from './fixtures/vllm.js';

interface Case {
  adapter: EngineAdapter;
  metrics: string[];
  headers: Record<string, string>;
  load: { waiting: number; running: number; kvUsage: number; kvUsageUnknown: boolean };
  models: unknown;
  responses: Array<{ body: unknown; usage: EngineUsage }>;
  restartToken: string | undefined;
  tokenize: { ok: unknown; ids: number[]; wrong?: unknown };
  cache: { info: Record<string, unknown> | undefined; model: unknown };
  reset: string;
}

const CASES: Case[] = [
  {
    adapter: adapterFor('vllm'),
    metrics: [V.VLLM_METRICS],
    headers: {},
    load: { waiting: 5, running: 2, kvUsage: 0.25, kvUsageUnknown: false },
    models: V.VLLM_MODELS,
    responses: [{ body: V.VLLM_COMPLETION, usage: { promptTokens: 512, completionTokens: 16, cachedTokens: 496, cachedFrom: 'usage.prompt_tokens_details.cached_tokens' } }],
    restartToken: '1733215200.12',
    tokenize: { ok: { count: 3, max_model_len: 8, tokens: [1, 2, 3] }, ids: [1, 2, 3] },
    cache: { info: undefined, model: { kind: 'blocks', capacityBlocks: 26300 } },
    reset: 'http',
  },
  {
    adapter: adapterFor('sglang'),
    metrics: [S.SGLANG_METRICS],
    headers: {},
    load: { waiting: 4, running: 3, kvUsage: 0.12, kvUsageUnknown: false },
    models: S.SGLANG_MODELS,
    responses: [
      { body: S.SGLANG_CHAT, usage: { promptTokens: 1200, completionTokens: 16, cachedTokens: 1024, cachedFrom: 'usage.prompt_tokens_details.cached_tokens' } },
      { body: S.SGLANG_CHAT_NO_REPORT, usage: { promptTokens: 1200, completionTokens: 16 } },
      { body: S.SGLANG_GENERATE, usage: { promptTokens: 1200, completionTokens: 16, cachedTokens: 1024, cachedFrom: 'meta_info.cached_tokens' } },
    ],
    restartToken: undefined,
    tokenize: { ok: { tokens: [5, 6] }, ids: [5, 6] },
    cache: { info: S.SGLANG_SERVER_INFO, model: { kind: 'blocks', capacityBlocks: Math.floor(343_000 / 16) } },
    reset: 'http',
  },
  {
    adapter: adapterFor('llamacpp'),
    metrics: [L.LLAMACPP_METRICS_OLD, L.LLAMACPP_METRICS_NEW],
    headers: L.LLAMACPP_METRICS_HEADERS,
    // kv_cache_usage_ratio (old builds) is the slots' cached prompts, not pressure: unknown.
    load: { waiting: 2, running: 1, kvUsage: 0, kvUsageUnknown: true },
    models: L.LLAMACPP_MODELS,
    responses: [
      { body: L.LLAMACPP_CHAT_NEW, usage: { promptTokens: 2050, completionTokens: 8, cachedTokens: 2021, cachedFrom: 'usage.prompt_tokens_details.cached_tokens' } },
      { body: L.LLAMACPP_CHAT_OLD, usage: { promptTokens: 2050, completionTokens: 8, cachedTokens: 2021, cachedFrom: 'usage.prompt_tokens - timings.prompt_n' } },
      { body: L.LLAMACPP_STREAM_TAIL, usage: { promptTokens: 2050, completionTokens: 8, cachedTokens: 2021, cachedFrom: 'timings.cache_n' } },
    ],
    restartToken: '1733215200',
    tokenize: { ok: L.LLAMACPP_TOKENIZE, ids: [1, 15043, 3186, 29991], wrong: L.LLAMACPP_TOKENIZE_WRONG_FORMAT },
    cache: { info: L.LLAMACPP_PROPS, model: { kind: 'slots', slots: 2 } },
    reset: 'per-slot',
  },
];

for (const c of CASES) {
  const a = c.adapter;
  test(`${a.label}: load snapshot from recorded /metrics`, () => {
    for (const text of c.metrics) {
      const samples = parsePromText(text, mapNames(a.metrics)).samples;
      const snap = a.snapshot(samples, 7)!;
      assert.ok(snap, 'snapshot');
      assert.deepEqual({ waiting: snap.waiting, running: snap.running, kvUsage: snap.kvUsage, kvUsageUnknown: snap.kvUsageUnknown === true }, c.load);
      assert.equal(snap.updatedAt, 7);
      assert.equal(a.restartToken(samples, c.headers), c.restartToken);
      // Another engine's metrics are not this engine's load.
      for (const other of ENGINE_ADAPTERS) {
        if (other === a || other.kind === 'openai') continue;
        assert.equal(other.snapshot(samples, 7), undefined, `${other.label} must not read ${a.label} metrics`);
      }
    }
  });
  test(`${a.label}: detected from its metrics prefix and its /v1/models owner`, () => {
    for (const text of c.metrics) assert.equal(engineFromMetricsText(text), a.kind);
    assert.equal(engineFromModels(c.models), a.kind);
  });
  test(`${a.label}: cached tokens from recorded responses`, () => {
    for (const r of c.responses) {
      assert.deepEqual(a.readUsage(r.body), r.usage);
      assert.equal(a.cachedTokens(r.body), r.usage.cachedTokens);
    }
    assert.equal(a.readUsage('not json'), undefined);
    assert.equal(a.cachedTokens({ usage: { prompt_tokens: -1, prompt_tokens_details: { cached_tokens: 'x' } } }), undefined);
  });
  test(`${a.label}: tokenizer format, cache model, cache reset, limitations`, () => {
    const call = a.tokenizeText('hello', true, 'm')!;
    assert.equal(call.path, '/tokenize');
    assert.deepEqual(a.parseTokens(c.tokenize.ok), c.tokenize.ids);
    assert.throws(() => a.parseTokens({ tokens: [] }), /empty token list/);
    assert.throws(() => a.parseTokens({ nope: 1 }), /without a 'tokens' array/);
    if (c.tokenize.wrong !== undefined) assert.throws(() => a.parseTokens(c.tokenize.wrong), /empty/);
    const samples = parsePromText(c.metrics[0], mapNames(a.metrics)).samples;
    assert.deepEqual(a.cacheModel(c.cache.info, a.snapshot(samples, 1)), c.cache.model);
    assert.equal(a.cacheReset.kind, c.reset);
    assert.ok(a.limitations.length > 0);
  });
}

test('llama.cpp: /tokenize takes {content}, not vLLM\'s {prompt}', () => {
  assert.deepEqual(adapterFor('llamacpp').tokenizeText('hi', false, 'm')!.body, { content: 'hi', add_special: false, parse_special: true });
  assert.deepEqual(adapterFor('vllm').tokenizeText('hi', false, 'm')!.body, { model: 'm', prompt: 'hi', add_special_tokens: false });
});

test('server info identifies llama.cpp (/props) and SGLang (/server_info)', () => {
  assert.equal(engineFromInfo('/props', L.LLAMACPP_PROPS), 'llamacpp');
  assert.equal(engineFromInfo('/get_server_info', S.SGLANG_SERVER_INFO), 'sglang');
  assert.equal(engineFromInfo('/props', { nothing: 1 }), undefined);
});

test('detectEngine: metrics first, then models, then server info, else generic', async () => {
  const server = (routes: Record<string, unknown>) => async (path: string) => {
    const b = routes[path];
    return b === undefined ? { status: 404, text: 'no' } : { status: 200, text: typeof b === 'string' ? b : JSON.stringify(b) };
  };
  assert.equal((await detectEngine(server({}), S.SGLANG_METRICS)).engine, 'sglang');
  const ll = await detectEngine(server({ '/v1/models': L.LLAMACPP_MODELS, '/props': L.LLAMACPP_PROPS }), undefined);
  assert.deepEqual([ll.engine, ll.via, ll.info?.total_slots], ['llamacpp', 'models', 2]);
  const sg = await detectEngine(server({ '/v1/models': { data: [{ id: 'x', owned_by: 'someone' }] }, '/get_server_info': S.SGLANG_SERVER_INFO }), undefined);
  assert.deepEqual([sg.engine, sg.via], ['sglang', '/get_server_info']);
  const generic = await detectEngine(async () => {
    throw new Error('refused');
  }, undefined);
  assert.deepEqual([generic.engine, generic.via], ['openai', 'none']);
});

test('llama.cpp b11434 (recorded from a real server): prefix counters = computed + cached tokens; older builds have none', () => {
  const a = adapterFor('llamacpp');
  const snap = a.snapshot(parsePromText(L.LLAMACPP_METRICS_B11434, mapNames(a.metrics)).samples, 1)!;
  assert.deepEqual([snap.prefixQueries, snap.prefixHits, snap.waiting, snap.running], [30, 14, 0, 0]);
  // Older builds export prompt_tokens_total but no cached counter: no counters, not a 0 % hit rate.
  const old = a.snapshot(parsePromText(L.LLAMACPP_METRICS_OLD, mapNames(a.metrics)).samples, 1)!;
  assert.deepEqual([old.prefixQueries, old.prefixHits], [undefined, undefined]);
});

test('llama.cpp cache model: one prompt per slot before the host-memory prompt cache, an LRU pool (learned capacity) from b6700', () => {
  const a = adapterFor('llamacpp');
  assert.deepEqual(a.cacheModel(L.LLAMACPP_PROPS, undefined), { kind: 'slots', slots: 2 });
  assert.deepEqual(a.cacheModel(L.LLAMACPP_PROPS_B11434, undefined), { kind: 'blocks' });
  assert.deepEqual(a.cacheModel({ ...L.LLAMACPP_PROPS_B11434, build_info: 'unknown' }, undefined), { kind: 'slots', slots: 2 });
});
