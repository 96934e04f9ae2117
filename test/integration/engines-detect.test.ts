/**
 * Engines detected per endpoint, with NO --engine flag, in front of the simulator's SGLang and
 * llama.cpp dialects (real HTTP): detected, healthy, cached tokens read from each engine's own
 * numbers; a wrong --engine override is never silent; a restarted server's old prefixes stop
 * attracting requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFleet, type SimFleet } from '../../src/sim/index.js';
import { startRouter, type RunningRouter } from '../../src/server/router.js';
import { buildScheduler } from '../../src/app/build-scheduler.js';
import { adapterFor } from '../../src/engines/registry.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import type { Scheduler } from '../../src/scheduling/types.js';
import type { ApproxPrefixIndex } from '../../src/prefix/approx-prefix-index.js';

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const fast = { model: MODEL, basePort: 0, profile: 'llama-3.2-1b' as const, timeScale: 0.02, maxModelLen: 8192 };

async function post(url: string, body: object): Promise<{ status: number; endpoint: string | null; json: Record<string, unknown> }> {
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  return { status: r.status, endpoint: r.headers.get('x-kvroute-endpoint'), json: (await r.json()) as Record<string, unknown> };
}

/** A streamed completion: the served endpoint and every SSE chunk object. */
async function streamed(url: string, body: object): Promise<{ endpoint: string | null; chunks: unknown[] }> {
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  const chunks = text.split('\n').filter((l) => l.startsWith('data: ') && !l.includes('[DONE]')).map((l) => JSON.parse(l.slice(6)) as unknown);
  return { endpoint: r.headers.get('x-kvroute-endpoint'), chunks };
}

/** The approximate prefix index of the scheduler (plain or inside the precise scorer). */
function approxIndex(s: Scheduler): ApproxPrefixIndex {
  for (const p of (s as unknown as { plugins: Map<string, { type: string; index?: ApproxPrefixIndex; approximate?: { index: ApproxPrefixIndex } }> }).plugins.values()) {
    if (p.type === 'prefix-cache-scorer' && p.index) return p.index;
    if (p.type === 'precise-prefix-cache-scorer' && p.approximate) return p.approximate.index;
  }
  throw new Error('no prefix scorer in the profile');
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

test('no --engine: SGLang and llama.cpp endpoints are detected, healthy, and report cached tokens from their own numbers', async () => {
  const fleets: SimFleet[] = [];
  let router: RunningRouter | undefined;
  try {
    fleets.push(await startFleet({ ...fast, replicas: 2, dialect: { engine: 'sglang' } }));
    fleets.push(await startFleet({ ...fast, replicas: 2, dialect: { engine: 'llamacpp', parallel: 2, llamacppBuild: 'old' }, slowMetrics: false }));
    const urls = fleets.flatMap((f) => f.replicas.map((r) => r.url));
    router = await startRouter({ endpoints: urls.map((url) => ({ url })), scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
    const eps = router.pool.all();
    assert.deepEqual(eps.map((e) => e.engine), ['sglang', 'sglang', 'llamacpp', 'llamacpp']);
    assert.ok(eps.every((e) => e.healthy && e.health?.engineSource === 'detected'), JSON.stringify(eps.map((e) => e.health)));
    assert.deepEqual(eps[2].cacheModel, { kind: 'slots', slots: 2 });
    assert.equal(eps[0].cacheModel?.kind, 'blocks');
    assert.equal(eps[2].metrics.kvUsageUnknown, true, 'llama.cpp kv usage is not pressure');
    assert.deepEqual(router.pool.models(), [MODEL]);
    const ready = (await (await fetch(`${router.adminUrl}/readyz`)).json()) as { ready: boolean; endpoints: Array<{ engine: string; engineSource: string }> };
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.endpoints.map((e) => `${e.engine}/${e.engineSource}`), ['sglang/detected', 'sglang/detected', 'llamacpp/detected', 'llamacpp/detected']);
    // The same long prompt twice per engine family, straight to one endpoint of each: the
    // second answer's cached tokens come from the engine's numbers, read by its adapter.
    for (const ep of [eps[0], eps[2]]) {
      const prompt = `${ep.engine} shared prefix `.repeat(120);
      await post(ep.url, { model: MODEL, prompt, max_tokens: 2 });
      const second = await post(ep.url, { model: MODEL, prompt, max_tokens: 2 });
      const usage = adapterFor(ep.engine).readUsage(second.json)!;
      assert.ok((usage.cachedTokens ?? 0) > 0.9 * (usage.promptTokens ?? 0), `${ep.engine}: ${JSON.stringify(usage)}`);
      if (ep.engine === 'llamacpp') assert.equal(usage.cachedFrom, 'usage.prompt_tokens - timings.prompt_n', 'old llama.cpp builds report only timings');
    }
    // Through the router (streamed: the engine's chunks pass through as they are, llama.cpp's
    // timings included): follow-ups stick to the server holding the prefix and hit its cache.
    const conv = 'a conversation about routing caches '.repeat(60);
    const a = await post(router.url, { model: MODEL, prompt: conv, max_tokens: 2 });
    const b = await streamed(router.url, { model: MODEL, prompt: conv + ' and a follow-up', max_tokens: 2, stream: true, stream_options: { include_usage: true } });
    assert.equal(a.status, 200);
    assert.equal(b.endpoint, a.endpoint);
    const ep = router.pool.get(b.endpoint!)!;
    assert.ok((adapterFor(ep.engine).cachedTokens(b.chunks) ?? 0) > 0, `the follow-up hit the cache of the server it was routed to: ${JSON.stringify(b.chunks.slice(-2))}`);
  } finally {
    await router?.close();
    for (const f of fleets) await f.close();
  }
});

test('a wrong --engine is never silent: the reason is in /readyz, the 503 message and the endpoint state', async () => {
  const fleet = await startFleet({ ...fast, replicas: 1, dialect: { engine: 'llamacpp', parallel: 2 }, slowMetrics: false });
  let router: RunningRouter | undefined;
  try {
    router = await startRouter({ endpoints: [{ url: fleet.replicas[0].url, engine: 'vllm' }], scheduler: buildScheduler({ preset: 'default' }), port: 0, adminPort: 0, processMetrics: false });
    const ep = router.pool.all()[0];
    assert.equal(ep.healthy, false);
    assert.match(ep.health!.reason, /no vllm load metrics .*it serves llamacpp metrics.*wrong --engine/);
    const ready = await fetch(`${router.adminUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reasons: string }).reasons, /wrong --engine/);
    const r = await post(router.url, { model: MODEL, prompt: 'hello', max_tokens: 2 });
    assert.equal(r.status, 503);
    assert.match(JSON.stringify(r.json), /0\/1 healthy: .*no vllm load metrics.*wrong --engine/);
  } finally {
    await router?.close();
    await fleet.close();
  }
});

for (const engine of ['vllm', 'sglang', 'llamacpp'] as const) {
  test(`${engine}: a restarted server's old prefixes stop attracting requests (restart detected, predictions dropped)`, async () => {
    // vLLM: process_start_time_seconds changes; SGLang: its counters go back; llama.cpp: Process-Start-Time-Unix changes.
    const dialect = engine === 'llamacpp' ? { dialect: { engine, parallel: 4 }, slowMetrics: false } : engine === 'sglang' ? { dialect: { engine } } : {};
    const fleet = await startFleet({ ...fast, replicas: 2, ...dialect });
    let router: RunningRouter | undefined;
    try {
      const scheduler = buildScheduler({ preset: 'default' });
      router = await startRouter({ endpoints: fleet.replicas.map((r) => ({ url: r.url })), scheduler, port: 0, adminPort: 0, processMetrics: false });
      const index = approxIndex(scheduler);
      const prompt = 'a long system prompt that every session shares '.repeat(40);
      const first = await post(router.url, { model: MODEL, prompt, max_tokens: 2 });
      const holder: Endpoint = router.pool.get(first.endpoint!)!;
      assert.equal(holder.engine, engine);
      // Let a scrape see the counters move before the restart (SGLang's restart shows as counters going back).
      const before = holder.metrics.updatedAt;
      assert.ok(await until(() => holder.metrics.updatedAt > before && (engine !== 'sglang' || (holder.metrics.prefixQueries ?? 0) > 0), 5000));
      assert.ok(index.blocksOf(holder) > 0, 'the router recorded the prefix on its server');
      const replica = fleet.replicas.find((r) => r.url === holder.url)!;
      await fetch(`${replica.url}/sim/restart`, { method: 'POST' });
      assert.ok(await until(() => (holder.health?.restarts ?? 0) >= 1, 5000), 'restart not detected');
      assert.equal(index.blocksOf(holder), 0, 'the restarted server still holds predicted prefixes');
      const metrics = await (await fetch(`${router.adminUrl}/metrics`)).text();
      assert.match(metrics, new RegExp(`kvroute_endpoint_restarts_total\\{endpoint="${holder.id.replace(/[.]/g, '\\.')}",reason="[^"]+"\\} 1`));
    } finally {
      await router?.close();
      await fleet.close();
    }
  });
}
